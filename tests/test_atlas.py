"""The structure atlas (gvcore.eval.atlas).

Rankings on constructed images whose answer is known, the streaming bound, filters, the per-image table from
the one scoring path, and bad settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gvcore.eval.atlas import MAX_CHECKPOINTS, MAX_TOP_K, TopK, build_atlas, load_checkpoints, regions_frame
from gvcore.eval.scoring import score_image

ROOT = Path(__file__).resolve().parents[1]
SIDE = 128  # HR pixels: 4 x 4 regions of 32 x 32 pixels (4 x 4 patches of 8)
FLAT_A = (0, 64)  # (y, x) of the region model A flattens
FLAT_B = (64, 0)  # ... model B flattens
NOISY_B = (96, 96)  # ... model B paints a full-contrast checkerboard into


class Painted(nn.Module):
    """Nearest-neighbour x2 upsampling, then a flat 32x32 region and/or a checkerboard 32x32 region."""

    def __init__(self, flat: tuple[int, int] | None = None, noisy: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device and dtype
        self.flat, self.noisy = flat, noisy

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(lr, scale_factor=2, mode="nearest") + self.anchor
        if self.flat is not None:
            y, x = self.flat
            out[..., y : y + 32, x : x + 32] = out[..., y : y + 32, x : x + 32].mean()
        if self.noisy is not None:
            y, x = self.noisy
            board = (torch.arange(32)[:, None] // 2 + torch.arange(32)[None, :] // 2) % 2  # 2-px squares
            out[..., y : y + 32, x : x + 32] = board.to(out.dtype)
        return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("atlas_data")
    rng = np.random.default_rng(7)
    for name in ("alpha", "beta", "gamma"):
        texture = rng.integers(
            40, 216, (SIDE // 4, SIDE // 4, 3), dtype=np.uint8
        )  # 4x4 blocks: SR can follow
        Image.fromarray(np.kron(texture, np.ones((4, 4, 1), dtype=np.uint8))).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    return {"A": Painted(flat=FLAT_A), "B": Painted(flat=FLAT_B, noisy=NOISY_B)}


@pytest.fixture(scope="module")
def full(models: dict[str, nn.Module], data: Path) -> object:
    """Every region of every image in every ranking (top-k larger than the number of regions)."""
    return build_atlas(models, data, 2, "standard", top_k=64)


class TestTopK:
    def test_keeps_the_k_largest_in_order(self) -> None:
        top = TopK(3)
        for score in [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]:
            top.push(score, f"s{score:g}")
        assert top.items() == [(9.0, "s9"), (7.0, "s7"), (5.0, "s5")]

    def test_ties_keep_the_first_pushed(self) -> None:
        top = TopK(2)
        for item in ("a", "b", "c"):
            top.push(1.0, item)
        assert [item for _, item in top.items()] == ["a", "b"]

    def test_memory_is_bounded_by_k(self) -> None:
        top = TopK(5)
        rng = np.random.default_rng(0)
        sizes = []
        for score in rng.random(10_000):
            top.push(float(score), None)
            sizes.append(len(top))
        assert max(sizes) == 5

    def test_k_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="k"):
            TopK(0)


class TestRankings:
    def test_worst_region_is_the_one_a_model_flattens(self, full: object) -> None:
        worst = full.regions["worst"]  # type: ignore[attr-defined]
        top_positions = {(r.y, r.x) for r in worst[:3]}
        assert top_positions <= {FLAT_A, FLAT_B}

    def test_scores_are_sorted_descending(self, full: object) -> None:
        for regions in full.regions.values():  # type: ignore[attr-defined]
            scores = [r.score for r in regions]
            assert scores == sorted(scores, reverse=True)

    def test_worst_score_is_the_mean_deficit_of_the_checkpoints(self, full: object) -> None:
        region = full.regions["worst"][0]  # type: ignore[attr-defined]
        assert region.score == pytest.approx(0.5 * (region.deficits["A"] + region.deficits["B"]))

    def test_most_recovered_is_where_b_keeps_what_a_flattened_or_adds(self, full: object) -> None:
        first = full.regions["most_recovered"][:6]  # type: ignore[attr-defined] # 3 images x 2 regions
        assert {(r.y, r.x) for r in first} == {FLAT_A, NOISY_B}

    def test_recovery_score_is_the_variance_difference(self, full: object) -> None:
        region = full.regions["most_recovered"][0]  # type: ignore[attr-defined]
        assert region.score == pytest.approx(region.deficits["A"] - region.deficits["B"])

    def test_least_recovered_is_where_b_flattens(self, full: object) -> None:
        first = full.regions["least_recovered"][:3]  # type: ignore[attr-defined]
        assert {(r.y, r.x) for r in first} == {FLAT_B}

    def test_least_recovered_skips_regions_where_nothing_was_lost(self, full: object) -> None:
        from gvcore.eval.atlas import MIN_LOST_VARIANCE

        for region in full.regions["least_recovered"]:  # type: ignore[attr-defined]
            assert max(region.deficits["A"], region.deficits["B"]) >= MIN_LOST_VARIANCE

    def test_overshoot_is_only_the_checkerboard(self, full: object) -> None:
        positions = {(r.y, r.x) for r in full.regions["overshoot"]}  # type: ignore[attr-defined]
        assert positions == {NOISY_B}

    def test_overshoot_regions_have_more_variance_than_hr(self, full: object) -> None:
        assert all(r.deficits["B"] < 0 for r in full.regions["overshoot"])  # type: ignore[attr-defined]

    def test_crops_are_aligned_and_exact(self, full: object) -> None:
        region = full.regions["overshoot"][0]  # type: ignore[attr-defined]
        board = region.crops["B"].astype(int)
        assert list(region.crops) == ["HR", "bicubic", "A", "B"]
        assert set(np.unique(board)) == {0, 255}

    def test_flat_crop_is_flat(self, full: object) -> None:
        region = next(r for r in full.regions["most_recovered"] if (r.y, r.x) == FLAT_A)  # type: ignore[attr-defined]
        assert np.ptp(region.crops["A"]) <= 1

    def test_one_checkpoint_has_no_pair_rankings(self, models: dict[str, nn.Module], data: Path) -> None:
        result = build_atlas({"A": models["A"]}, data, 2, top_k=2)
        assert list(result.regions) == ["worst"]


class TestStreaming:
    def test_small_top_k_equals_the_head_of_the_full_ranking(
        self, models: dict[str, nn.Module], data: Path, full: object
    ) -> None:
        small = build_atlas(models, data, 2, "standard", top_k=3, keep_crops=False)
        for name, regions in small.regions.items():
            expected = [(r.image, r.y, r.x) for r in full.regions[name][:3]]  # type: ignore[attr-defined]
            assert [(r.image, r.y, r.x) for r in regions] == expected

    def test_kept_regions_never_exceed_top_k(self, models: dict[str, nn.Module], data: Path) -> None:
        result = build_atlas(models, data, 2, top_k=2, keep_crops=False)
        assert max(len(r) for r in result.regions.values()) == 2

    def test_no_crops_when_not_kept(self, models: dict[str, nn.Module], data: Path) -> None:
        result = build_atlas(models, data, 2, top_k=1, keep_crops=False)
        assert result.regions["worst"][0].crops == {}

    def test_progress_is_reported_per_image(self, models: dict[str, nn.Module], data: Path) -> None:
        calls: list[tuple[int, int, str]] = []
        build_atlas(models, data, 2, top_k=1, keep_crops=False, progress=lambda *a: calls.append(a))
        assert calls == [(1, 3, "alpha"), (2, 3, "beta"), (3, 3, "gamma")]


class TestFilters:
    def test_image_filter(self, models: dict[str, nn.Module], data: Path) -> None:
        result = build_atlas(models, data, 2, top_k=8, images=["beta"], keep_crops=False)
        images = {r.image for regions in result.regions.values() for r in regions} | set(
            result.table["image"]
        )
        assert images == {"beta"}

    def test_deficit_range(self, models: dict[str, nn.Module], data: Path, full: object) -> None:
        scores = sorted(r.score for r in full.regions["worst"])  # type: ignore[attr-defined]
        low, high = scores[len(scores) // 4], scores[len(scores) // 2]
        result = build_atlas(models, data, 2, top_k=64, deficit_range=(low, high), keep_crops=False)
        kept = [r.score for r in result.regions["worst"]]
        assert kept
        assert all(low <= s <= high for s in kept)

    def test_both_directions_is_the_mean_of_gx_and_gy(self, models: dict[str, nn.Module], data: Path) -> None:
        scores = {}
        for direction in ("gx", "gy", "both"):
            result = build_atlas(models, data, 2, top_k=64, direction=direction, keep_crops=False)
            scores[direction] = {(r.image, r.y, r.x): r.score for r in result.regions["worst"]}
        # each direction keeps its own non-touching regions: compare the regions all three kept
        common = scores["both"].keys() & scores["gx"].keys() & scores["gy"].keys()
        assert len(common) >= 4
        for key in common:
            assert scores["both"][key] == pytest.approx(0.5 * (scores["gx"][key] + scores["gy"][key]))

    def test_directions_differ(self, models: dict[str, nn.Module], data: Path) -> None:
        gx = build_atlas(models, data, 2, top_k=64, direction="gx", keep_crops=False)
        gy = build_atlas(models, data, 2, top_k=64, direction="gy", keep_crops=False)
        assert [r.score for r in gx.regions["worst"]] != [r.score for r in gy.regions["worst"]]


class TestTable:
    def test_rows_come_from_the_scoring_path(
        self, models: dict[str, nn.Module], data: Path, full: object
    ) -> None:
        from gvcore.io import load_image

        scored = score_image(load_image(data / "alpha.png"), 2, "standard", models)
        table = full.table  # type: ignore[attr-defined]
        for row in scored.rows[1:]:
            mine = table[(table["image"] == "alpha") & (table["method"] == row["method"])].iloc[0]
            assert mine["psnr"] == pytest.approx(row["psnr"])
            assert mine["var_ratio"] == pytest.approx(row["var_ratio"])

    def test_worst_location_per_output(self, full: object) -> None:
        table = full.table  # type: ignore[attr-defined]
        rows = table[table["method"] == "A"]
        assert set(zip(rows["worst_y"], rows["worst_x"], strict=True)) == {FLAT_A}

    def test_regions_frame_columns(self, full: object) -> None:
        frame = regions_frame(full, ["overshoot"])  # type: ignore[arg-type]
        expected = ["ranking", "rank", "image", "y", "x", "size", "score", "hr_variance"]
        assert list(frame.columns) == [*expected, "deficit_bicubic", "deficit_A", "deficit_B"]

    def test_regions_frame_rows(self, full: object) -> None:
        frame = regions_frame(full, ["overshoot"])  # type: ignore[arg-type]
        assert frame["rank"].tolist() == list(range(1, len(frame) + 1))

    def test_regions_frame_unknown_ranking(self, full: object) -> None:
        with pytest.raises(ValueError, match="ranking"):
            regions_frame(full, ["best"])  # type: ignore[arg-type]


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"top_k": 0}, "top_k"),
            ({"top_k": MAX_TOP_K + 1}, "top_k must be at most"),
            ({"direction": "diagonal"}, "direction"),
            ({"region": 0}, "region"),
            ({"deficit_range": (1.0, 0.0)}, "deficit_range"),
            ({"images": ["nope"]}, "nope not in the data set"),
            ({"pair": ("A", "A")}, "pair must name two different models"),
            ({"pair": ("A", "C")}, "pair must name"),
            ({"protocol": "matlab"}, "protocol"),
        ],
    )
    def test_bad_settings(self, models: dict[str, nn.Module], data: Path, kwargs: dict, match: str) -> None:
        options = {"top_k": 2, **kwargs}
        protocol = options.pop("protocol", "standard")
        with pytest.raises(ValueError, match=match):
            build_atlas(models, data, 2, protocol, **options)

    def test_no_models(self, data: Path) -> None:
        with pytest.raises(ValueError, match="1 to 8 checkpoints; got 0"):
            build_atlas({}, data, 2)

    def test_too_many_models(self, data: Path) -> None:
        many = {f"m{i}": Painted() for i in range(MAX_CHECKPOINTS + 1)}
        with pytest.raises(ValueError, match="1 to 8 checkpoints; got 9"):
            build_atlas(many, data, 2)

    def test_missing_data_folder(self, models: dict[str, nn.Module], tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="does not exist"):
            build_atlas(models, tmp_path / "nowhere", 2)

    def test_checkpoint_of_the_other_degradation(self) -> None:
        official = ROOT / "assets" / "checkpoints" / "official" / "espcn-x2-l1-official-s0.safetensors"
        with pytest.raises(ValueError, match="trained on 'official' LR images"):
            load_checkpoints([official], 2, "standard")

    def test_too_many_checkpoints(self) -> None:
        path = ROOT / "assets" / "checkpoints" / "espcn-x2-l1-s0.safetensors"
        with pytest.raises(ValueError, match="1 to 8 checkpoints; got 9"):
            load_checkpoints([path] * 9, 2, "standard")

    def test_duplicate_checkpoints_get_unique_labels(self) -> None:
        path = ROOT / "assets" / "checkpoints" / "espcn-x2-l1-s0.safetensors"
        models, _ = load_checkpoints([path, path], 2, "standard")
        assert list(models) == ["espcn-x2-l1-s0", "espcn-x2-l1-s0#2"]


def test_a_ranking_never_keeps_two_touching_regions_of_one_image(
    models: dict[str, nn.Module], data: Path
) -> None:
    result = build_atlas(models, data, 2, top_k=64, keep_crops=False)
    for ranking, regions in result.regions.items():
        for a in regions:
            for b in regions:
                if a is b or a.image != b.image:
                    continue
                apart = max(abs(a.y - b.y), abs(a.x - b.x))
                assert apart > a.size, (ranking, a.image, (a.y, a.x), (b.y, b.x))
