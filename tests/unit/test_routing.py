"""Routing: which targets an object goes to, and its key there."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.models import SourceConfig, SourceObject, TargetConfig
from lambdas.routing import Router, is_folder_marker, matches, relative_key, route, target_key


def target(file_types=("*",), prefix="out/", index=0, **rules):
    return TargetConfig(index=index, bucket="dst", prefix=prefix, file_types=tuple(file_types), **rules)


def obj(key, size=10, bucket="src"):
    return SourceObject(bucket=bucket, key=key, size=size, etag="e")


# --- relative keys -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "prefix", "expected"), [
    ("source/a.jpg", "source/", "a.jpg"),
    ("source/sub/a.jpg", "source/", "sub/a.jpg"),
    ("a.jpg", "", "a.jpg"),
    ("source/a.jpg", "source", "a.jpg"),  # a folder named without its "/" leaves no leading "/"
    ("logs/2024-01/a.log", "logs/2024-", "01/a.log"),  # a prefix ending mid-name is used as given
    ("source/a.jpg", "source/a.jpg", "a.jpg"),  # a prefix naming one object leaves its base name
    ("source//a.jpg", "source/", "/a.jpg"),  # an odd key under a folder is kept as it is
])
def test_relative_key(key, prefix, expected):
    assert relative_key(key, prefix) == expected


def test_relative_key_refuses_a_key_outside_the_prefix():
    with pytest.raises(ValueError, match="not under the source prefix"):
        relative_key("other/a.jpg", "source/")


def test_folder_markers():
    assert is_folder_marker("photos/")
    assert not is_folder_marker("photos/a.jpg")
    assert not is_folder_marker("photos")


# --- file types ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("file_types", "key", "expected"), [
    (("jpg",), "a.jpg", True),
    (("jpg",), "dir/A.JPG", True),  # case-insensitive
    (("jpg",), "a.jpgx", False),
    (("jpg",), "jpg", False),  # no extension
    (("jpg",), "dir/jpg", False),
    (("jpg",), ".jpg", False),  # a hidden file without an extension
    (("jpg",), "a.jpg/b", False),  # the type is matched on the base name only
    (("jpg",), "ajpg", False),
    (("tar.gz",), "backup.TAR.GZ", True),  # multi-dot types
    (("tar.gz",), "backup.gz", False),
    (("gz",), "backup.tar.gz", True),
    (("jpg", "png"), "a.png", True),
    (("*",), "no-extension", True),
    (("*",), "a.anything", True),
])
def test_file_types(file_types, key, expected):
    assert matches(target(file_types), key, size=1) is expected


# --- globs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rules", "key", "expected"), [
    ({"include": ("*.jpg",)}, "a/b/c.jpg", True),  # "*" crosses "/"
    ({"include": ("raw/*",)}, "raw/x/y.bin", True),
    ({"include": ("raw/*",)}, "cooked/raw/y.bin", False),  # matched against the whole relative key
    ({"include": ("raw/*", "*.txt")}, "notes.txt", True),  # any include pattern will do
    ({"include": ("*.JPG",)}, "a.jpg", False),  # globs are case-sensitive, as S3 keys are
    ({"include": ("img-?.png",)}, "img-1.png", True),
    ({"include": ("img-[0-9].png",)}, "img-a.png", False),
    ({"exclude": ("*.tmp",)}, "x/a.tmp", False),
    ({"exclude": ("*.tmp",)}, "x/a.jpg", True),
    ({"include": ("raw/*",), "exclude": ("raw/skip/*",)}, "raw/skip/a", False),  # exclude wins
    ({"include": ()}, "anything", True),  # no include patterns: no include filter
])
def test_include_and_exclude(rules, key, expected):
    assert matches(target(**rules), key, size=1) is expected


# --- sizes ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "expected"), [(9, False), (10, True), (15, True), (20, True), (21, False)])
def test_size_bounds_are_inclusive(size, expected):
    assert matches(target(min_size=10, max_size=20), "a.bin", size) is expected


def test_zero_byte_objects_match_without_bounds_and_with_min_size_zero():
    assert matches(target(), "empty", 0)
    assert matches(target(min_size=0), "empty", 0)
    assert not matches(target(min_size=1), "empty", 0)


# --- target keys ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("prefix", "flatten", "rel", "expected"), [
    ("mp4/", False, "a/b/c.mp4", "mp4/a/b/c.mp4"),
    ("mp4/", True, "a/b/c.mp4", "mp4/c.mp4"),
    ("", False, "a/b/c.mp4", "a/b/c.mp4"),
    ("", True, "c.mp4", "c.mp4"),
])
def test_target_key(prefix, flatten, rel, expected):
    assert target_key(target(prefix=prefix, flatten=flatten), rel) == expected


# --- route ---------------------------------------------------------------------------------------------
SOURCE = SourceConfig("src", "source/")
VIDEOS = target(("mp4",), prefix="mp4/", index=0)
IMAGES = target(("jpg", "png"), prefix="images/", index=1)
BIG = target(("*",), prefix="big/", index=2, min_size=1000, flatten=True)


def test_the_original_example_routes_by_file_type():
    # GIVEN the original example's two targets  WHEN objects are routed  THEN each goes where its type says
    assert route(obj("source/clips/a.mp4"), SOURCE, (VIDEOS, IMAGES)) == [(VIDEOS, "mp4/clips/a.mp4")]
    assert route(obj("source/b.PNG"), SOURCE, (VIDEOS, IMAGES)) == [(IMAGES, "images/b.PNG")]
    assert route(obj("source/c.txt"), SOURCE, (VIDEOS, IMAGES)) == []


def test_an_object_goes_to_every_matching_target_in_target_order():
    assert route(obj("source/d/a.mp4", size=5000), SOURCE, (VIDEOS, IMAGES, BIG)) == [
        (VIDEOS, "mp4/d/a.mp4"), (BIG, "big/a.mp4")]


def test_folder_markers_are_never_routed():
    assert route(obj("source/folder/", size=0), SOURCE, (target(),)) == []


def test_objects_of_another_bucket_are_refused():
    with pytest.raises(ValueError, match="not from source bucket"):
        route(obj("source/a.mp4", bucket="other"), SOURCE, (VIDEOS,))


@pytest.mark.parametrize("name", ["with space.jpg", "a+b.jpg", "100%.jpg", "caf\u00e9 \u65e5\u672c.jpg",
                                  "emoji-\U0001f600.jpg", "a%20b+c.jpg"])
def test_unusual_keys_pass_through_unchanged(name):
    assert route(obj("source/dir one/" + name), SOURCE, (IMAGES,)) == [(IMAGES, "images/dir one/" + name)]


# --- properties ----------------------------------------------------------------------------------------
segments = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=8)
keys = st.lists(segments, min_size=1, max_size=4).map("/".join)
prefixes = st.sampled_from(["", "out/", "a/b/", "x-"])
targets = st.builds(
    TargetConfig,
    index=st.integers(0, 5),
    bucket=st.just("dst"),
    prefix=prefixes,
    file_types=st.lists(st.sampled_from(["*", "jpg", "tar.gz", "gz", "x"]), min_size=1, max_size=3).map(tuple),
    include=st.lists(st.sampled_from(["*", "*.jpg", "a*", "*/*"]), max_size=2).map(tuple),
    exclude=st.lists(st.sampled_from(["*.gz", "b*"]), max_size=1).map(tuple),
    min_size=st.one_of(st.none(), st.integers(0, 100)),
    max_size=st.one_of(st.none(), st.integers(0, 100)),
    flatten=st.booleans(),
)


@given(targets, keys)
def test_target_key_starts_with_the_target_prefix_and_ends_with_the_base_name(tgt, rel):
    key = target_key(tgt, rel)
    assert key.startswith(tgt.prefix)
    assert key.endswith(rel.rsplit("/", 1)[-1])
    assert key == tgt.prefix + rel or tgt.flatten


@given(st.sampled_from(["", "in/", "in"]), keys, st.integers(0, 100), st.lists(targets, max_size=4))
def test_route_returns_exactly_the_matching_targets(prefix, rel, size, tgts):
    key = (prefix + "/" if prefix == "in" else prefix) + rel
    routed = route(obj(key, size=size), SourceConfig("src", prefix), tuple(tgts))
    assert [t for t, _ in routed] == [t for t in tgts if matches(t, rel, size)]
    assert all(k == target_key(t, rel) for t, k in routed)


@given(keys, st.sampled_from(["", "in/", "in/sub-"]))
def test_relative_key_is_what_follows_the_prefix(rel, prefix):
    assert relative_key(prefix + rel, prefix) == rel


# --- the planner's compiled router agrees with route() ----------------------------------------------
_names = st.sampled_from(["a.jpg", "b.JPG", "c.tar.gz", "d.gz", ".jpg", "e", "f.", "g.png.bak", "x y+z%.mp4",
                          "ü.Jpg", "dir/h.tar.GZ", "i..gz", "a/b/", "raw/j.jpg"])
_types = st.lists(st.sampled_from(["jpg", "gz", "tar.gz", "mp4", "*", "png", "bak"]), min_size=1, max_size=3)


@given(names=st.lists(_names, min_size=1, max_size=6), types=st.lists(_types, min_size=1, max_size=4),
       size=st.integers(0, 100), bounded=st.booleans(), flatten=st.booleans(),
       prefix=st.sampled_from(["in/", "in", ""]))
def test_router_routes_exactly_like_route(names, types, size, bounded, flatten, prefix):
    # GIVEN targets with file types (some dotted, some "*"), and sometimes size bounds, globs and flatten,
    # under a folder prefix, a prefix without its "/", or the whole bucket
    source = SourceConfig("src", prefix)
    targets = tuple(
        TargetConfig(i, "dst", f"t{i}/", tuple(dict.fromkeys(ft)), min_size=10 if bounded and i % 2 else None,
                     exclude=("raw/*",) if bounded else (), flatten=flatten and i % 2 == 0)
        for i, ft in enumerate(types))
    router = Router(source, targets)
    for name in names:
        obj = SourceObject("src", "in/" + name, size, "e")
        # THEN the compiled router and the reference function give the same targets, keys and order
        assert router.route(obj) == route(obj, source, targets)


def test_router_applies_size_and_glob_rules_to_every_object_of_a_remembered_extension():
    # GIVEN one router whose jpg targets have size bounds and globs, and objects sharing the extension
    source = SourceConfig("src", "in/")
    targets = (target(["jpg"], prefix="small/", index=0, max_size=10),
               target(["jpg"], prefix="raw/", index=1, include=("raw/*",), exclude=("raw/tmp/*",)),
               target(["*"], prefix="all/", index=2, min_size=5))
    router = Router(source, targets)
    objects = [obj("in/a.jpg", size=1), obj("in/raw/b.JPG", size=50), obj("in/raw/tmp/c.jpg", size=7),
               obj("in/d.jpg", size=10), obj("in/raw/e.jpg", size=3)]
    # WHEN the router has seen the extension before each of them
    # THEN each object still gets exactly the targets its own key and size select
    assert [router.route(o) for o in objects] == [route(o, source, targets) for o in objects]
    assert [[t.prefix for t, _ in router.route(o)] for o in objects] == [
        ["small/"], ["raw/", "all/"], ["small/", "all/"], ["small/", "all/"], ["small/", "raw/"]]


@pytest.mark.parametrize("types", [("jpg", "1"), ("tar.gz", "1")])
def test_router_routes_past_its_cache_of_extensions(monkeypatch, types):
    # GIVEN a router that remembers only two extensions, and keys with many distinct ones
    monkeypatch.setattr("lambdas.routing.EXTENSION_CACHE_SIZE", 2)
    source = SourceConfig("src", "")
    targets = (target(types, prefix="t/", index=0),)
    router = Router(source, targets)
    objects = [obj(f"log.{i}") for i in range(6)] + [obj("a.jpg"), obj("b.tar.gz"), obj(".1")]
    # THEN every object routes as route() says, remembered or not
    assert [router.route(o) for o in objects] == [route(o, source, targets) for o in objects]


# --- incremental selection ---------------------------------------------------------------------------------
def dated(key, modified, storage_class="STANDARD"):
    return SourceObject("src", key, 10, "e", storage_class=storage_class, last_modified=modified)


WINDOW = {"modified_after": "2026-12-01T00:00:00+00:00", "modified_before": "2026-12-02T00:00:00+00:00"}


@pytest.mark.parametrize(("modified", "taken"), [
    ("2026-11-30T23:59:59+00:00", False),
    ("2026-12-01T00:00:00+00:00", True),  # after is inclusive
    ("2026-12-01T12:00:00.5+00:00", True),
    ("2026-12-01T23:30:00-01:00", False),  # 00:30 UTC on the 2nd: before is exclusive
    ("2026-12-02T00:00:00Z", False),
    ("", False),  # a time nobody knows is not provably in the window
])
def test_a_target_takes_objects_modified_in_its_window(modified, taken):
    # GIVEN a target rule with a window [after, before)  THEN only objects modified inside it go there
    source = SourceConfig("src", "in/")
    rule = target(**WINDOW)
    assert bool(route(dated("in/a.txt", modified), source, (rule,))) is taken
    assert bool(Router(source, (rule,)).route(dated("in/a.txt", modified))) is taken


def test_storage_classes_select_by_the_listed_class_on_a_target_and_on_a_source():
    ia_only, every = target(storage_classes=("STANDARD_IA",), index=0), target(index=1, prefix="all/")
    source = SourceConfig("src", "")
    standard, infrequent = dated("a.txt", "2026-12-01T00:00:00+00:00"), dated("b.txt", "", "STANDARD_IA")
    assert [t.index for t, _ in route(standard, source, (ia_only, every))] == [1]
    assert [t.index for t, _ in route(infrequent, source, (ia_only, every))] == [0, 1]
    # a source's selection decides for every target: outside it, an object matches none
    picky = SourceConfig("src", "", storage_classes=("STANDARD_IA",))
    assert route(standard, picky, (ia_only, every)) == []
    assert Router(picky, (ia_only, every)).route(standard) == []
    assert len(Router(picky, (ia_only, every)).route(infrequent)) == 2


def test_a_source_window_selects_before_any_target_rule():
    source = SourceConfig("src", "in/", modified_after="2026-12-01T00:00:00+00:00")
    rules = (target(file_types=("txt",)),)
    router = Router(source, rules)
    assert router.route(dated("in/old.txt", "2026-11-01T00:00:00+00:00")) == []
    assert router.route(dated("in/new.txt", "2026-12-01T08:00:00+00:00")) == [(rules[0], "out/new.txt")]
