"""CelebA's layout: the attribute parser, the partition file and the data folder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gfr.data import celeba
from gfr.errors import GfrError
from gfr.data.synthetic import ATTRIBUTES

SRC = "attrs.txt"


def attr_text(rows, names=ATTRIBUTES, declared=None, eol="\r\n") -> str:
    """Text in list_attr_celeba.txt's format (CelebA pads values to width 2 and ends lines with CRLF)."""
    lines = [str(len(rows) if declared is None else declared), " ".join(names)]
    lines += [name + " " + " ".join(f"{v:2d}" for v in values) for name, values in rows]
    return eol.join(lines) + eol


def rows_for(n, width=len(ATTRIBUTES), seed=0):
    rng = np.random.default_rng(seed)
    return [(f"{i + 1:06d}.jpg", list(rng.choice([-1, 1], width))) for i in range(n)]


def expect_error(text, *parts):
    with pytest.raises(GfrError) as info:
        celeba.parse_attributes(text, SRC)
    for part in parts:
        assert part in str(info.value), f"{part!r} not in {info.value}"
    return info.value


# ---- parse_attributes ----------------------------------------------------------------------------

def test_real_format_with_crlf():
    rows = rows_for(5)
    frame = celeba.parse_attributes(attr_text(rows), SRC)
    assert list(frame.columns) == list(ATTRIBUTES) and len(ATTRIBUTES) == 40
    assert list(frame.index) == [r[0] for r in rows] and frame.index.name == "image_id"
    assert frame.values.dtype == np.int8
    np.testing.assert_array_equal(frame.values, np.array([r[1] for r in rows]))
    assert not any("\r" in c for c in frame.columns)


def test_real_first_rows_verbatim():
    # The first rows of the official file, byte for byte (CRLF, double spaces before positive values).
    text = (
        "3\r\n"
        + " ".join(ATTRIBUTES) + " \r\n"
        "000001.jpg -1  1  1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1  1  1 -1  1 -1 -1  1 -1 -1  1 -1 -1 -1  1  1 -1  1 -1  1 -1 -1  1\r\n"
        "000002.jpg -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1 -1  1 -1 -1  1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1\r\n"
        "000003.jpg -1 -1 -1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1  1  1 -1 -1  1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1  1\r\n"
    )
    frame = celeba.parse_attributes(text, SRC)
    assert frame.loc["000001.jpg", "Male"] == -1
    assert frame.loc["000003.jpg", "Male"] == 1
    assert frame.loc["000001.jpg", "Arched_Eyebrows"] == 1


def test_wrong_value_count_names_the_line():
    rows = rows_for(4)
    rows[2] = (rows[2][0], rows[2][1][:-1])  # the fifth line of the file
    expect_error(attr_text(rows), f"{SRC} line 5", "got 39 values")


@pytest.mark.parametrize("bad", ["0", "2", "x", "1.0", "-"])
def test_values_other_than_plus_minus_one(bad):
    text = attr_text(rows_for(3)).replace("000002.jpg  1", f"000002.jpg {bad}").replace("000002.jpg -1", f"000002.jpg {bad}")
    expect_error(text, f"{SRC} line 4", "1 or -1")


@pytest.mark.parametrize("declared", [4, 2, 0])
def test_declared_row_count_mismatch(declared):
    expect_error(attr_text(rows_for(3), declared=declared), f"declares {declared} rows but 3 follow")


def test_row_count_not_a_number():
    expect_error(attr_text(rows_for(2), declared="two"), "line 1", "row count")


def test_duplicate_ids():
    rows = rows_for(3)
    rows[2] = (rows[0][0], rows[2][1])
    expect_error(attr_text(rows), "duplicate image id '000001.jpg'")


def test_missing_male_column():
    names = [n if n != "Male" else "Female" for n in ATTRIBUTES]
    expect_error(attr_text(rows_for(2), names=names), "line 2", "'Male'")


def test_repeated_attribute_name():
    names = list(ATTRIBUTES)
    names[0] = "Male"
    expect_error(attr_text(rows_for(2), names=names), "line 2", "repeated")


@pytest.mark.parametrize("name", ["../000001.jpg", "a/000001.jpg", "a\\000001.jpg", ".hidden.jpg", "/etc/passwd"])
def test_path_like_image_names(name):
    rows = rows_for(2)
    rows[1] = (name, rows[1][1])
    expect_error(attr_text(rows), repr(name), "not a plain file name")


def test_too_short():
    expect_error("1\n", "too short")


def test_blank_lines_are_ignored():
    text = attr_text(rows_for(3), eol="\n").replace("\n000002", "\n\n   \n000002")
    assert len(celeba.parse_attributes(text, SRC)) == 3


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.lists(st.sampled_from([-1, 1]), min_size=40, max_size=40), min_size=0, max_size=12),
    eol=st.sampled_from(["\n", "\r\n"]),
    pad=st.booleans(),
)
def test_generated_files_parse_to_the_same_values(values, eol, pad):
    rows = [(f"{i * 7 + 1:06d}.jpg", v) for i, v in enumerate(values)]
    text = attr_text(rows, eol=eol)
    if not pad:
        text = text.replace("  1", " 1")
    frame = celeba.parse_attributes(text, SRC)
    assert list(frame.index) == [r[0] for r in rows]
    np.testing.assert_array_equal(frame.values.reshape(len(rows), 40), np.array(values, dtype=np.int8).reshape(len(rows), 40))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=300)
    | st.builds(
        lambda head, body: head + body,
        st.sampled_from(["2\n" + " ".join(ATTRIBUTES) + "\n", "1\nMale\n", "2\r\nMale Young\r\n"]),
        st.text(alphabet=" \t\r\n-+01x./\\ab", max_size=200),
    )
)
def test_arbitrary_text_raises_only_gfr_error(text):
    try:
        frame = celeba.parse_attributes(text, SRC)
    except GfrError as exc:
        assert str(exc).startswith(SRC)
    else:
        assert celeba.LABEL in frame.columns
        assert set(np.unique(frame.values)) <= {-1, 1}


# ---- files on disk -------------------------------------------------------------------------------

def make_layout(root, n=3, text=None):
    (root / celeba.IMAGES_DIR).mkdir(parents=True)
    (root / celeba.ATTR_FILE).write_text(text if text is not None else attr_text(rows_for(n)), newline="")
    return root


def test_read_attributes_from_folder(tmp_path):
    root = make_layout(tmp_path / "d", 4)
    frame = celeba.read_attributes(root)
    assert len(frame) == 4 and celeba.LABEL in frame.columns


def test_read_attributes_non_ascii(tmp_path):
    root = make_layout(tmp_path / "d")
    (root / celeba.ATTR_FILE).write_bytes(b"1\nMale\n\xe9t\xe9.jpg 1\n")
    with pytest.raises(GfrError, match="non-ASCII"):
        celeba.read_attributes(root)


def test_read_attributes_missing_file(tmp_path):
    with pytest.raises(GfrError, match="attribute file not found"):
        celeba.read_attributes(tmp_path)


def test_partition_absent_is_none(tmp_path):
    assert celeba.read_partition(tmp_path) is None


def test_partition_file_read(tmp_path):
    (tmp_path / celeba.PARTITION_FILE).write_text("000001.jpg 0\r\n000002.jpg 1\r\n\r\n000003.jpg 2\r\n", newline="")
    part = celeba.read_partition(tmp_path)
    assert part.to_dict() == {"000001.jpg": 0, "000002.jpg": 1, "000003.jpg": 2}


@pytest.mark.parametrize("line", ["000002.jpg 3", "000002.jpg", "000002.jpg 1 2", "000002.jpg train"])
def test_partition_bad_line_names_the_line(tmp_path, line):
    (tmp_path / celeba.PARTITION_FILE).write_text(f"000001.jpg 0\n{line}\n")
    with pytest.raises(GfrError, match=rf"{celeba.PARTITION_FILE} line 2"):
        celeba.read_partition(tmp_path)


def test_partition_non_ascii(tmp_path):
    (tmp_path / celeba.PARTITION_FILE).write_bytes(b"000001.jpg 0\n\xff\xfe 1\n")
    with pytest.raises(GfrError, match=celeba.PARTITION_FILE):
        celeba.read_partition(tmp_path)


def test_data_dir_given(tmp_path):
    root = make_layout(tmp_path / "d")
    assert celeba.data_dir(root) == root
    assert celeba.data_dir(str(root)) == root


def test_data_dir_from_env(tmp_path, monkeypatch):
    root = make_layout(tmp_path / "d")
    monkeypatch.setenv(celeba.DATA_ENV, str(root))
    assert celeba.data_dir(None) == root


def test_data_dir_argument_beats_env(tmp_path, monkeypatch):
    root = make_layout(tmp_path / "d")
    monkeypatch.setenv(celeba.DATA_ENV, str(tmp_path / "elsewhere"))
    assert celeba.data_dir(root) == root


def test_data_dir_unset():
    with pytest.raises(GfrError, match="GFR_DATA_DIR"):
        celeba.data_dir(None)


def test_data_dir_missing(tmp_path):
    with pytest.raises(GfrError, match="data directory not found") as info:
        celeba.data_dir(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_data_dir_env_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(celeba.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(GfrError, match="data directory not found"):
        celeba.data_dir(None)


@pytest.mark.parametrize("missing", [celeba.ATTR_FILE, celeba.IMAGES_DIR])
def test_data_dir_missing_part(tmp_path, missing):
    root = make_layout(tmp_path / "d")
    target = root / missing
    if target.is_dir():
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(GfrError, match=f"missing {missing}"):
        celeba.data_dir(root)


def test_image_path(tmp_path):
    assert celeba.image_path(tmp_path, "000001.jpg") == tmp_path / "img_align_celeba" / "000001.jpg"


def test_synthetic_dataset_parses(synth_root):
    frame = celeba.read_attributes(synth_root)
    assert len(frame) == 40 and (frame.Male == 1).sum() == 16
    assert all((synth_root / celeba.IMAGES_DIR / i).is_file() for i in frame.index)
    assert (synth_root / celeba.ATTR_FILE).read_bytes().count(b"\r\n") == 42


def test_real_attribute_file(real_data):
    frame = celeba.read_attributes(real_data)
    assert frame.shape == (5000, 40)
    assert int((frame.Male == 1).sum()) == 2047


# ---- the read_csv-based parsing keeps every check -------------------------------------------------------------

@pytest.mark.parametrize("row", [0, 2])  # the first data line (pandas would cut it) and a later one
def test_too_many_values_names_the_line(row):
    rows = rows_for(4)
    rows[row] = (rows[row][0], rows[row][1] + [1, -1])
    expect_error(attr_text(rows), f"{SRC} line {row + 3}", "expected an image name and 40 values")


def test_quotes_are_plain_characters():
    rows = rows_for(2)
    rows[1] = ('"000002.jpg', rows[1][1])
    assert celeba.parse_attributes(attr_text(rows), SRC).index[1] == '"000002.jpg'


def test_line_numbers_count_blank_lines():
    rows = rows_for(3)
    text = attr_text(rows, eol="\n").replace("\n000002", "\n\n000002")
    expect_error(text.replace("000003.jpg -1", "000003.jpg 0").replace("000003.jpg  1", "000003.jpg 0"),
                 f"{SRC} line 6", "1 or -1")


def test_identities_read_and_bad_line_named(tmp_path):
    (tmp_path / celeba.IDENTITY_FILE).write_text("000001.jpg 2880\r\n000002.jpg 2937\r\n\r\n000003.jpg 8692\r\n",
                                                 newline="")
    ids = celeba.read_identities(tmp_path)
    assert ids.to_dict() == {"000001.jpg": 2880, "000002.jpg": 2937, "000003.jpg": 8692} and ids.name == "identity"
    (tmp_path / celeba.IDENTITY_FILE).write_text("000001.jpg 2880\n000002.jpg x7\n")
    with pytest.raises(GfrError, match=rf"{celeba.IDENTITY_FILE} line 2"):
        celeba.read_identities(tmp_path)
    assert celeba.read_identities(tmp_path / "nowhere") is None


def test_partition_line_numbers_count_blank_lines(tmp_path):
    (tmp_path / celeba.PARTITION_FILE).write_text("000001.jpg 0\n\n000002.jpg 5\n")
    with pytest.raises(GfrError, match=rf"{celeba.PARTITION_FILE} line 3"):
        celeba.read_partition(tmp_path)
