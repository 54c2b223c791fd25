import io
import os

import pytest

from scanner.io.walk import (
    DEFAULT_EXTENSIONS,
    DIRECTORY_NOT_FOLLOWED,
    NOT_FOLLOWED,
    Found,
    Walk,
    list_entries,
    parse_extensions,
)


def listing(walk):
    """{usable path: (status, size)} of everything the walk yields, checking each is yielded once."""
    found = list(walk)
    paths = [os.path.join(os.fsencode(walk.roots[f.root]), f.relpath) for f in found]
    assert len(set(paths)) == len(paths), "a file was yielded twice"
    return {os.fsdecode(p): (f.status, f.size) for p, f in zip(paths, found, strict=True)}


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top.jpg").write_bytes(b"1")
    (tmp_path / "UPPER.PNG").write_bytes(b"22")
    (tmp_path / "notes.txt").write_bytes(b"333")
    (tmp_path / "a" / "mid.jpeg").write_bytes(b"4444")
    (tmp_path / "a" / "b" / "deep.webp").write_bytes(b"55555")
    return tmp_path


def test_recursive_walk_with_extension_filter(tree):
    walk = Walk([tree])
    assert walk.roots == ["", str(tree)]
    assert listing(walk) == {
        str(tree / "top.jpg"): ("", 1),
        str(tree / "UPPER.PNG"): ("", 2),
        str(tree / "a" / "mid.jpeg"): ("", 4),
        str(tree / "a" / "b" / "deep.webp"): ("", 5),
    }
    found = {f.relpath: f for f in walk}
    assert found[b"a/b/deep.webp"].root == 1
    assert found[b"a/b/deep.webp"].mtime == os.stat(tree / "a" / "b" / "deep.webp").st_mtime


def test_no_recursion_and_other_filters(tree):
    assert set(listing(Walk([tree], recursive=False))) == {str(tree / "top.jpg"), str(tree / "UPPER.PNG")}
    assert set(listing(Walk([tree], extensions=parse_extensions("txt,.JPEG")))) == {
        str(tree / "notes.txt"),
        str(tree / "a" / "mid.jpeg"),
    }
    assert len(listing(Walk([tree], extensions=parse_extensions("*")))) == 5


def test_parse_extensions():
    assert parse_extensions(None) is DEFAULT_EXTENSIONS
    assert parse_extensions(" jpg, .PNG ,") == {"jpg", "png"}
    assert parse_extensions("*") is None
    with pytest.raises(ValueError):
        parse_extensions(" , ")


def test_named_files_are_taken_whatever_their_extension(tree, tmp_path):
    walk = Walk([tree / "notes.txt", tree / "a"])
    assert walk.roots == ["", str(tree / "a")]
    found = list(walk)
    assert found[0] == Found(0, bytes(tree / "notes.txt"), 3, os.stat(tree / "notes.txt").st_mtime)
    assert {f.relpath for f in found[1:]} == {b"mid.jpeg", b"b/deep.webp"}


def test_from_list_streams_lines_losslessly(tree, tmp_path):
    odd = os.fsencode(str(tree)) + b"/caf\xe9.jpg"
    with open(odd, "wb") as handle:
        handle.write(b"x")
    lines = [
        bytes(tree / "top.jpg") + b"\n",
        odd + b"\r\n",
        b"\n",
        bytes(tree / "a" / "b") + b"\n",
        bytes(tree / "gone.png") + b"\n",
    ]
    got = listing(Walk(from_list=list_entries(io.BytesIO(b"".join(lines)))))
    assert got == {
        str(tree / "top.jpg"): ("", 1),
        os.fsdecode(odd): ("", 1),
        str(tree / "a" / "b" / "deep.webp"): ("", 5),
        str(tree / "gone.png"): ("vanished", 0),
    }


def test_a_null_separated_list_keeps_names_that_end_in_a_newline(tree):
    names = [os.fsencode(str(tree)) + b"/ends in newline\n.jpg\n", os.fsencode(str(tree)) + b"/cr\r"]
    for name in names:
        with open(name, "wb") as handle:
            handle.write(b"xy")
    got = listing(Walk(from_list=list_entries(io.BytesIO(b"\0".join(names) + b"\0"), null=True)))
    assert got == {os.fsdecode(name): ("", 2) for name in names}


def test_symlink_loop_is_a_row(tree):
    (tree / "a" / "b" / "back").symlink_to(tree / "a")
    found = [f for f in Walk([tree], follow_links=True) if f.status]
    assert [(f.relpath, f.status) for f in found] == [(b"a/b/back", "unreadable")]
    assert "links to a directory that contains it" in found[0].error
    assert sum(f.relpath.endswith(b"deep.webp") for f in Walk([tree], follow_links=True)) == 1


def test_links_duplicates_and_broken_links(tree):
    (tree / "again").symlink_to(tree / "a" / "b")  # the same directory a second time
    (tree / "dangling.jpg").symlink_to(tree / "nowhere.jpg")
    (tree / "self.png").symlink_to(tree / "self.png")
    (tree / "alias.jpg").symlink_to(tree / "top.jpg")  # a link to a file is a file
    got = listing(Walk([tree], follow_links=True))
    assert sum(p.endswith("/deep.webp") for p in got) == 1  # reached twice, walked once
    assert got[str(tree / "dangling.jpg")] == ("unreadable", 0)
    assert got[str(tree / "self.png")] == ("unreadable", 0)
    assert got[str(tree / "alias.jpg")] == ("", 1)
    errors = {f.relpath: f.error for f in Walk([tree], follow_links=True) if f.status}
    assert errors == {b"dangling.jpg": "broken symbolic link", b"self.png": "symbolic link loop"}


def test_links_are_not_followed_by_default(tree, tmp_path_factory):
    """A link inside the tree, to a file or to a directory outside it, is a row saying it was not followed;
    the files found are opened without following a link (so one swapped in after the walk is refused)."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "elsewhere.jpg").write_bytes(b"x")
    (tree / "out").symlink_to(outside)
    (tree / "alias.jpg").symlink_to(tree / "top.jpg")
    (tree / "dangling.jpg").symlink_to(tree / "nowhere.jpg")
    walk = Walk([tree])
    assert walk.follow_links is False
    found = {f.relpath: f for f in walk}
    assert not any(p.endswith(b"elsewhere.jpg") for p in found)
    assert (found[b"out"].status, found[b"out"].error) == ("not_image", DIRECTORY_NOT_FOLLOWED)
    for name in (b"alias.jpg", b"dangling.jpg"):
        assert (found[name].status, found[name].error) == ("not_image", NOT_FOLLOWED)
    assert found[b"top.jpg"].status == "" and found[b"top.jpg"].follow is False
    # Named directly, a link is followed: the user chose it.
    assert [(f.status, f.follow) for f in Walk([tree / "alias.jpg"])] == [("", True)]
    assert {f.relpath for f in Walk([tree / "out"]) if not f.status} == {b"elsewhere.jpg"}


def test_special_files_are_never_opened(tree):
    os.mkfifo(tree / "pipe.jpg")
    assert listing(Walk([tree]))[str(tree / "pipe.jpg")] == ("not_image", 0)
    assert [f.status for f in Walk([tree / "pipe.jpg"])] == ["not_image"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory; permissions cannot be tested as root")
def test_unreadable_directory_is_a_row(tree):
    os.chmod(tree / "a", 0)
    try:
        got = listing(Walk([tree]))
    finally:
        os.chmod(tree / "a", 0o755)
    assert got[str(tree / "a")][0] == "permission"
    assert str(tree / "top.jpg") in got


def test_walk_streams(tmp_path):
    """The first file comes out before later directories are listed."""
    for i in range(3):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "x.jpg").write_bytes(b"x")
    walk = iter(Walk([tmp_path]))
    first = next(walk)
    os.rename(tmp_path / "d2", tmp_path / "moved")
    rest = list(walk)
    assert first.status == "" and len(rest) == 2
    if first.relpath != b"d2/x.jpg":
        assert [f.status for f in rest if f.relpath.startswith(b"d2")] == ["vanished"]


@pytest.mark.parametrize("block", [1 << 16, 3])
def test_a_list_holding_a_nul_is_nul_separated_without_being_told(tree, block):
    """`find -print0 | scanner scan --from-list -` without --null: a name with a newline stays one name."""
    names = [os.fsencode(str(tree)) + b"/two\nlines.jpg", os.fsencode(str(tree)) + b"/plain.jpg"]
    for name in names:
        with open(name, "wb") as handle:
            handle.write(b"xyz")
    stream = b"\0".join(names) + b"\0"
    assert list(list_entries(io.BytesIO(stream), block=block)) == names
    got = listing(Walk(from_list=list_entries(io.BytesIO(stream), block=block)))
    assert got == {os.fsdecode(name): ("", 3) for name in names}  # no `vanished` halves


def test_lines_then_nuls_switch_to_nul_separated_at_the_first_nul():
    lines = b"".join(b"/x/%05d.jpg\n" % i for i in range(400))  # past the first 4 KiB: read as lines
    entries = list(list_entries(io.BytesIO(lines + b"/x/last\n.jpg\0/x/end\r\0"), block=100))
    assert entries[:400] == [b"/x/%05d.jpg" % i for i in range(400)]
    assert entries[400:] == [b"/x/last", b".jpg", b"/x/end\r"]  # the lines up to the first NUL, then NULs only
