"""Soft-NMS (external/nms.py): the compiled module and the numpy fallback both equal a
slow, obvious plain-Python soft-NMS, and the properties the tester relies on hold.

Soft-NMS is Bodla et al. 2017; the merge variant is CornerNet / CenterNet's
(Duan et al. 2019). The rules under test are written in external/nms.py.
"""
import contextlib
import importlib
import math
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from external import nms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ID_COLUMN = 7  # the boxes made below carry their input row number here


# ---------------------------------------------------------------- reference

def reference_iou(a, b):
    """(overlaps, IoU) of two boxes in inclusive pixel coordinates (width = x2 - x1 + 1)."""
    inter_w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    inter_h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if inter_w <= 0 or inter_h <= 0:
        return False, 0.0
    inter = inter_w * inter_h
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return True, inter / (area_a + area_b - inter)


def reference_soft_nms(boxes, Nt, method, sigma=0.5, threshold=0.001, merge=False, weight_exp=6.0):
    """Soft-NMS with plain Python floats and loops; returns the kept rows, float64."""
    in_play = [[float(value) for value in row] for row in boxes if float(row[4]) >= threshold]
    kept = []
    while in_play:
        best_index = 0
        for index, row in enumerate(in_play):
            if row[4] > in_play[best_index][4]:  # the first of equal maxima wins
                best_index = index
        best = in_play.pop(best_index)

        # Merge sums start with the kept box itself at weight 1.
        tl_total, br_total = best[5] if merge else 0.0, best[6] if merge else 0.0
        sum_x1, sum_y1 = best[0] * tl_total, best[1] * tl_total
        sum_x2, sum_y2 = best[2] * br_total, best[3] * br_total
        survivors = []
        for row in in_play:
            overlaps, iou = reference_iou(best, row)
            if method == 0:
                weight = 0.0 if iou > Nt else 1.0
            elif method == 1:
                weight = 1.0 - iou if iou > Nt else 1.0
            else:
                weight = math.exp(-(iou * iou) / sigma)
            if merge and overlaps:
                merge_weight = (1.0 - weight) ** weight_exp
                sum_x1 += row[0] * row[5] * merge_weight
                sum_y1 += row[1] * row[5] * merge_weight
                sum_x2 += row[2] * row[6] * merge_weight
                sum_y2 += row[3] * row[6] * merge_weight
                tl_total += row[5] * merge_weight
                br_total += row[6] * merge_weight
            row[4] = row[4] * weight
            if row[4] >= threshold:
                survivors.append(row)
        in_play = survivors

        if merge and tl_total > 0:
            best[0], best[1] = sum_x1 / tl_total, sum_y1 / tl_total
        if merge and br_total > 0:
            best[2], best[3] = sum_x2 / br_total, sum_y2 / br_total
        kept.append(best)
    return np.array(kept, dtype=np.float64).reshape(-1, np.shape(boxes)[1])


# ---------------------------------------------------------------- inputs

def clustered_boxes(seed, num_boxes):
    """(N, 8) float32 boxes in clusters, so that suppression happens:
    x1, y1, x2, y2, score, tl_score, br_score, input row number."""
    rng = np.random.default_rng(seed)
    num_clusters = max(1, num_boxes // 12)
    cluster_centres = rng.uniform(0, 300, (num_clusters, 2))
    centres = cluster_centres[rng.integers(num_clusters, size=num_boxes)] + rng.normal(0, 4, (num_boxes, 2))
    sizes = rng.uniform(6, 60, (num_boxes, 2))
    boxes = np.zeros((num_boxes, 8), dtype=np.float32)
    boxes[:, 0:2] = centres - sizes / 2
    boxes[:, 2:4] = centres + sizes / 2
    boxes[:, 4] = rng.uniform(0, 1, num_boxes)
    if seed % 2:
        boxes[:, 4] = np.round(boxes[:, 4] * 10) / 10  # many exact ties
    boxes[rng.random(num_boxes) < 0.1, 4] = -1  # pairs the decoder rejected
    boxes[rng.random(num_boxes) < 0.05, 4] = 0.0005  # below threshold from the start
    if num_boxes > 1:  # some identical boxes: IoU exactly 1
        copies = rng.random(num_boxes) < 0.05
        boxes[copies, :4] = boxes[rng.integers(num_boxes, size=int(copies.sum())), :4]
    boxes[:, 5:7] = rng.uniform(0.05, 1, (num_boxes, 2))
    boxes[:, ID_COLUMN] = np.arange(num_boxes)
    return boxes


def pairwise_iou(boxes):
    """(K, K) IoU in inclusive pixel coordinates, vectorised (for property checks)."""
    x1, y1, x2, y2 = (boxes[:, c].astype(np.float64) for c in range(4))
    inter_w = np.clip(np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1) + 1, 0, None)
    inter_h = np.clip(np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1) + 1, 0, None)
    inter = inter_w * inter_h
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    return inter / (areas[:, None] + areas - inter)


# ---------------------------------------------------------------- backends

def _compiler_present():
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    return shutil.which(shlex.split(compiler)[0]) is not None


NO_COMPILER = ("no C compiler on this machine: the compiled soft-NMS cannot be built "
               "(the numpy fallback is still tested)")


@pytest.fixture(scope="session")
def compiled_module():
    """external._cpu_nms, built in place first when it is not built yet; None when it
    cannot be built because there is no C compiler."""
    source = os.path.join(ROOT, "external", "_cpu_nms.pyx")
    try:
        module = importlib.import_module("external._cpu_nms")
    except ImportError:
        # Nothing is loaded yet, so building in place cannot pull a library from under us.
        build = subprocess.run([sys.executable, "setup_cpu_nms.py", "build_ext", "--inplace"],
                               cwd=ROOT, capture_output=True, text=True, timeout=600)
        if build.returncode != 0:
            if not _compiler_present():
                return None
            pytest.fail(f"setup_cpu_nms.py failed:\n{build.stdout}\n{build.stderr}")
        importlib.invalidate_caches()
        module = importlib.import_module("external._cpu_nms")
    if os.path.getmtime(module.__file__) < os.path.getmtime(source):
        pytest.fail("external/_cpu_nms.pyx is newer than the compiled module; rebuild it with "
                    "`python setup_cpu_nms.py build_ext --inplace` so the tests check the source")
    return module


@contextlib.contextmanager
def backend_in_use(name, compiled_module):
    """Make external.nms run on the compiled module or on the numpy fallback."""
    if name == "compiled" and compiled_module is None:
        pytest.skip(NO_COMPILER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nms, "_compiled", compiled_module if name == "compiled" else None)
        patch.setattr(nms, "_notice_shown", True)  # the notice has its own test
        yield


@pytest.fixture(params=["compiled", "fallback"])
def backend(request):
    compiled = request.getfixturevalue("compiled_module") if request.param == "compiled" else None
    with backend_in_use(request.param, compiled):
        yield request.param


# ---------------------------------------------------------------- against the reference

# Per seed: Nt, sigma, weight_exp (0 is allowed by the config: a plain average).
SETTINGS = {0: (0.5, 0.5, 6.0), 1: (0.3, 0.5, 10.0), 2: (0.7, 0.3, 1.0), 3: (0.9, 0.5, 0.0)}


def assert_same_rows(actual, expected, context):
    assert actual.dtype == np.float32, context
    assert actual.shape == expected.shape, context
    np.testing.assert_array_equal(actual[:, ID_COLUMN], expected[:, ID_COLUMN], err_msg=context)
    np.testing.assert_allclose(actual[:, 4], expected[:, 4], rtol=1e-6, err_msg=context)
    np.testing.assert_allclose(actual[:, :4], expected[:, :4], rtol=1e-6, atol=1e-4, err_msg=context)
    np.testing.assert_array_equal(actual[:, 5:], expected[:, 5:].astype(np.float32), err_msg=context)


@pytest.mark.parametrize("num_boxes", [0, 1, 2, 7, 40, 300])
@pytest.mark.parametrize("seed", sorted(SETTINGS))
def test_both_backends_equal_the_reference(seed, num_boxes, compiled_module):
    boxes = clustered_boxes(seed, num_boxes)
    Nt, sigma, weight_exp = SETTINGS[seed]
    expected, expected_merged = {}, {}
    for method in (0, 1, 2):
        expected[method] = reference_soft_nms(boxes, Nt, method, sigma)
        expected_merged[method] = reference_soft_nms(boxes, Nt, method, sigma, merge=True,
                                                     weight_exp=weight_exp)
        for name in ("fallback", "compiled") if compiled_module else ("fallback",):
            with backend_in_use(name, compiled_module):
                kept = nms.soft_nms(boxes, Nt, method, sigma=sigma)
                merged = nms.soft_nms_merge(boxes, Nt, method, sigma=sigma, weight_exp=weight_exp)
            assert_same_rows(kept, expected[method], f"{name} soft_nms method {method}")
            assert_same_rows(merged, expected_merged[method], f"{name} soft_nms_merge method {method}")
    if num_boxes >= 40:  # the inputs do exercise suppression, decay and merging
        assert len(expected[0]) < np.count_nonzero(boxes[:, 4] >= 0.001)
        decayed = expected[2][:, 4] < boxes[expected[2][:, ID_COLUMN].astype(int), 4]
        assert decayed.any()
        assert not np.allclose(expected_merged[2][:, :4], expected[2][:, :4])


# ---------------------------------------------------------------- properties

@pytest.mark.parametrize("Nt", [0.3, 0.5, 0.7])
def test_hard_nms_leaves_no_pair_above_Nt(backend, Nt):
    kept = nms.soft_nms(clustered_boxes(5, 300), Nt, "nms")
    iou = pairwise_iou(kept)
    np.fill_diagonal(iou, 0)
    assert len(kept) > 1 and iou.max() <= Nt


@pytest.mark.parametrize("method", ["linear_soft_nms", "exp_soft_nms"])
def test_soft_nms_only_lowers_scores_and_returns_them_in_order(backend, method):
    boxes = clustered_boxes(6, 300)
    kept = nms.soft_nms(boxes, 0.5, method)
    original = boxes[kept[:, ID_COLUMN].astype(int), 4]
    assert np.all(kept[:, 4] <= original)
    assert np.any(kept[:, 4] < original)  # some scores were decayed
    assert np.all(np.diff(kept[:, 4]) <= 0)
    assert kept[:, 4].min() >= 0.001


@pytest.mark.parametrize("method", ["linear_soft_nms", "exp_soft_nms"])
def test_merge_with_infinite_weight_exp_is_no_merge(backend, method):
    # (1 - weight)^inf is 0 whenever weight > 0: no other box pulls on the kept one.
    # Hard NMS is left out: its suppressed boxes have weight 0 and merge at any exponent.
    boxes = clustered_boxes(7, 300)
    merged = nms.soft_nms_merge(boxes, 0.5, method, weight_exp=math.inf)
    plain = nms.soft_nms(boxes, 0.5, method)
    np.testing.assert_array_equal(merged[:, ID_COLUMN], plain[:, ID_COLUMN])
    np.testing.assert_allclose(merged, plain, rtol=1e-6)


# Two overlapping 10 x 10 boxes, B shifted 2 px right: intersection 8 x 10 = 80,
# union 100 + 100 - 80 = 120, IoU 2/3.
BOX_A = [0, 0, 9, 9, 0.9, 0.8, 0.6]
BOX_B = [2, 0, 11, 9, 0.6, 0.4, 0.2]


def test_merge_by_hand_hard_nms(backend):
    # IoU 2/3 > 0.5: B gets weight 0, so merge weight (1 - 0)^6 = 1, and is discarded.
    kept = nms.soft_nms_merge(np.array([BOX_A, BOX_B], np.float32), 0.5, "nms")
    x1 = (0 * 0.8 + 2 * 0.4) / (0.8 + 0.4)  # tl-score weighted
    x2 = (9 * 0.6 + 11 * 0.2) / (0.6 + 0.2)  # br-score weighted
    np.testing.assert_allclose(kept, [[x1, 0, x2, 9, 0.9, 0.8, 0.6]], rtol=1e-6)


def test_merge_by_hand_linear(backend):
    # Linear: B's weight 1 - 2/3 = 1/3 (score 0.6 -> 0.2, kept); with weight_exp 1 its
    # merge weight is 2/3. B is chosen second with nothing left to merge.
    kept = nms.soft_nms_merge(np.array([BOX_B, BOX_A], np.float32), 0.5, "linear_soft_nms", weight_exp=1)
    x1 = (0 * 0.8 + 2 * 0.4 * 2 / 3) / (0.8 + 0.4 * 2 / 3)
    x2 = (9 * 0.6 + 11 * 0.2 * 2 / 3) / (0.6 + 0.2 * 2 / 3)
    np.testing.assert_allclose(kept, [[x1, 0, x2, 9, 0.9, 0.8, 0.6],
                                      [2, 0, 11, 9, 0.6 / 3, 0.4, 0.2]], rtol=1e-6)


def test_gaussian_by_hand(backend):
    kept = nms.soft_nms(np.array([BOX_A, BOX_B], np.float32), 0.5, "exp_soft_nms", sigma=0.5)
    np.testing.assert_allclose(kept[:, 4], [0.9, 0.6 * math.exp(-(2 / 3) ** 2 / 0.5)], rtol=1e-6)


def test_ties_go_to_the_earliest_row(backend):
    boxes = np.array([[0, 0, 9, 9, 0.5, 1, 0], [1, 0, 10, 9, 0.5, 2, 0], [0, 1, 9, 10, 0.5, 3, 0]],
                     np.float32)
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        kept = nms.soft_nms(boxes[order], 0.5, "nms")
        assert kept.tolist() == [boxes[order[0]].tolist()]


def test_extra_columns_travel_with_their_rows(backend):
    boxes = clustered_boxes(8, 200)
    extra = np.random.default_rng(8).uniform(-5, 5, (200, 3)).astype(np.float32)
    boxes = np.concatenate([boxes, extra], axis=1)  # (200, 11)
    for kept in (nms.soft_nms(boxes, 0.5, "exp_soft_nms"), nms.soft_nms_merge(boxes, 0.5, "exp_soft_nms")):
        rows = kept[:, ID_COLUMN].astype(int)
        assert kept.shape[1] == 11 and len(np.unique(rows)) == len(rows)
        np.testing.assert_array_equal(kept[:, 5:], boxes[rows, 5:])
    unmerged = nms.soft_nms(boxes, 0.5, "exp_soft_nms")
    np.testing.assert_array_equal(unmerged[:, :4], boxes[unmerged[:, ID_COLUMN].astype(int), :4])


def test_input_is_left_untouched_and_not_shared(backend):
    boxes = clustered_boxes(9, 120)
    before = boxes.copy()
    for function in (nms.soft_nms, nms.soft_nms_merge):
        for method in (0, 1, 2):
            kept = function(boxes, 0.5, method)
            assert not np.shares_memory(kept, boxes)
    np.testing.assert_array_equal(boxes, before)


def test_names_and_numbers_select_the_same_method(backend):
    boxes = clustered_boxes(10, 100)
    for number, name in enumerate(["nms", "linear_soft_nms", "exp_soft_nms"]):
        np.testing.assert_array_equal(nms.soft_nms(boxes, 0.5, number), nms.soft_nms(boxes, 0.5, name))


def test_float64_and_integer_boxes(backend):
    boxes = clustered_boxes(11, 60)
    kept64 = nms.soft_nms(boxes.astype(np.float64), 0.5, 2)
    assert kept64.dtype == np.float64
    np.testing.assert_allclose(kept64, nms.soft_nms(boxes, 0.5, 2), rtol=1e-6)
    integer = np.array([[0, 0, 9, 9, 1], [1, 1, 9, 9, 1]])
    assert nms.soft_nms(integer, 0.5, 0).dtype == np.float32


@pytest.mark.parametrize("columns", [5, 8])
def test_empty_input(backend, columns):
    boxes = np.zeros((0, columns), np.float32)
    for kept in (nms.soft_nms(boxes, 0.5, "exp_soft_nms"),
                 *([nms.soft_nms_merge(boxes, 0.5, "exp_soft_nms")] if columns >= 7 else [])):
        assert kept.shape == (0, columns) and kept.dtype == np.float32


def test_everything_below_threshold_gives_empty(backend):
    boxes = clustered_boxes(12, 30)
    boxes[:, 4] = -1
    assert nms.soft_nms_merge(boxes, 0.5, 2).shape == (0, 8)


# ---------------------------------------------------------------- errors

def test_unknown_method_names_the_valid_ones():
    boxes = clustered_boxes(0, 5)
    for bad in ("soft", 3, True, None):
        with pytest.raises(ValueError) as info:
            nms.soft_nms(boxes, 0.5, bad)
        assert all(name in str(info.value) for name in ("'nms'", "'linear_soft_nms'", "'exp_soft_nms'"))


def test_merge_needs_the_corner_scores():
    with pytest.raises(ValueError, match=r"soft_nms_merge: boxes must have shape \(N, >= 7\).*tl_score"):
        nms.soft_nms_merge(np.zeros((3, 5), np.float32), 0.5, "nms")
    nms.soft_nms(np.zeros((3, 5), np.float32), 0.5, "nms")  # five columns are enough without merge


@pytest.mark.parametrize("call, message", [
    (lambda b: nms.soft_nms(b[:, :4], 0.5, 0), r"shape \(N, >= 5\)"),
    (lambda b: nms.soft_nms(b[0], 0.5, 0), r"shape \(N, >= 5\)"),
    (lambda b: nms.soft_nms(b.astype(str), 0.5, 0), "numeric"),
    (lambda b: nms.soft_nms(np.where(np.arange(8) == 4, np.nan, b), 0.5, 0), r"boxes\[0, 4\] is nan"),
    (lambda b: nms.soft_nms(b, -0.1, 0), "Nt must be"),
    (lambda b: nms.soft_nms(b, 0.5, 2, sigma=0), "sigma must be"),
    (lambda b: nms.soft_nms(b, 0.5, 0, threshold=0), "threshold must be .*zero weight"),
    (lambda b: nms.soft_nms_merge(b, 0.5, 0, weight_exp=-1), "weight_exp must be"),
    (lambda b: nms.soft_nms_merge(b, 0.5, 0, weight_exp="6"), "weight_exp must be a number"),
])
def test_bad_arguments_fail_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call(clustered_boxes(0, 4))


# ---------------------------------------------------------------- fallback notice and build script

def test_fallback_prints_one_notice_and_still_works(monkeypatch, capsys):
    boxes = clustered_boxes(13, 150)
    expected = reference_soft_nms(boxes, 0.5, 2, merge=True)
    monkeypatch.setattr(nms, "_compiled", None)
    monkeypatch.setattr(nms, "_compiled_import_error", ModuleNotFoundError("No module named 'external._cpu_nms'",
                                                                       name="external._cpu_nms"))
    monkeypatch.setattr(nms, "_notice_shown", False)
    capsys.readouterr()
    first = nms.soft_nms_merge(boxes, 0.5, "exp_soft_nms")
    nms.soft_nms(boxes, 0.5, "nms")
    captured = capsys.readouterr()
    assert not nms.using_compiled()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "not built" in lines[0]
    assert "python setup_cpu_nms.py build_ext --inplace" in lines[0]
    assert captured.out == ""
    assert_same_rows(first, expected, "fallback after the notice")


def test_setup_script_says_when_cython_is_missing():
    script = ("import runpy, sys; sys.modules['Cython'] = None; sys.argv = ['setup_cpu_nms.py']; "
              "runpy.run_path('setup_cpu_nms.py', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "Cython is not installed" in result.stderr and "numpy fallback" in result.stderr


def test_setup_script_says_when_the_compiler_is_missing(tmp_path):
    # Built out of the tree (--build-lib) so the project's own module is not touched.
    env = dict(os.environ, CC=str(tmp_path / "no-such-cc"))
    result = subprocess.run([sys.executable, "setup_cpu_nms.py", "build_ext", "--force",
                             "--build-lib", str(tmp_path / "lib"), "--build-temp", str(tmp_path / "temp")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "C compiler" in result.stderr and "numpy fallback" in result.stderr
    assert not list((tmp_path / "lib").rglob("_cpu_nms*"))
