"""Image features end to end: the listings simulator, safe decoding of every bad-image kind, the
features, the ONNX classifier and the held-out evaluation."""

import io

import numpy as np
import onnx
import polars as pl
import pytest
from PIL import Image

from arbiter.platform.enrich import images
from arbiter.platform.enrich.image_classifier import (
    ClassifierMismatch,
    OnnxClassifier,
    export_onnx,
    labelled_embeddings,
    train_classifier,
    train_on_simulator,
    train_onnx_classifier,
)
from arbiter.platform.enrich.image_evaluate import KINDS, evaluate_images, photo_folds
from arbiter.platform.enrich.image_features import (
    EMBEDDING_DIM,
    IMAGE_FEATURES,
    MISSING_IMAGE,
    describe,
    embedding_matrix,
    image_features,
    image_records,
)
from arbiter.platform.enrich.image_matching import match_near_duplicates
from arbiter.platform.schema import LISTINGS, QUARANTINE, conform
from arbiter.platform.sources.listings_sim import (
    AUGMENTATIONS,
    CATEGORIES,
    DEFECTS,
    VENUES,
    base_picture,
    defect_bytes,
    product_pool,
    simulate_listings,
)

# What safe decoding must make of each problem file: a rejection reason, or decoded with these facts.
REJECTED_AS = {
    "truncated_jpeg": images.TRUNCATED,
    "empty_file": images.EMPTY,
    "not_an_image": images.NOT_AN_IMAGE,
    "decompression_bomb": images.TOO_MANY_PIXELS,
}
DECODED_AS = {
    "png_named_jpg": {"format": "PNG", "format_mismatch": True, "source_mode": "RGB", "orientation": 1},
    "cmyk_jpeg": {"format": "JPEG", "format_mismatch": False, "source_mode": "CMYK", "orientation": 1},
    "rgba_png": {"format": "PNG", "format_mismatch": False, "source_mode": "RGBA", "orientation": 1},
    "gray16_png": {"format": "PNG", "format_mismatch": False, "source_mode": "I;16", "orientation": 1},
    "exif_rotated": {"format": "JPEG", "format_mismatch": False, "source_mode": "RGB", "orientation": 6},
}


@pytest.fixture(scope="module")
def small():
    """A few products on every venue, with one listing per problem file."""
    simulated = simulate_listings(seed=7, n_products=6, bad_images=True)
    features, quarantine = image_features(image_records(simulated.listings, simulated.images), partition="p1")
    return simulated, features, quarantine


@pytest.fixture(scope="module")
def full():
    """Every product of the pool (seed 0), described without a classifier."""
    simulated = simulate_listings(seed=0)
    features, quarantine = image_features(image_records(simulated.listings, simulated.images))
    assert quarantine.height == 0
    return simulated, features


def _jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95, **options)
    return out.getvalue()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- the simulator -------------------------------------------------------------------------------


def test_simulator_is_deterministic_and_keeps_products_stable():
    a, b = simulate_listings(3, 5), simulate_listings(3, 5)
    assert a.listings.equals(b.listings) and a.truth.equals(b.truth) and a.images == b.images
    assert not simulate_listings(4, 5).listings.equals(a.listings)
    larger = simulate_listings(3, 8)  # more products add listings, never change the others
    assert a.listings.join(larger.listings, on=a.listings.columns, how="anti").height == 0
    assert all(larger.images[key] == data for key, data in a.images.items())


def test_simulator_lists_every_product_on_every_venue_in_the_contract():
    simulated = simulate_listings(1, 10)
    conform(simulated.listings, LISTINGS, name="listings", partition="test")
    truth = simulated.truth
    assert truth.height == simulated.listings.height == 10 * len(VENUES)
    assert truth.group_by("product_id").agg(pl.col("venue").n_unique()).get_column("venue").to_list() == [4] * 10
    assert set(truth.get_column("category")) == set(CATEGORIES)  # categories take turns
    assert simulated.listings.select("venue", "listing_id").is_unique().all()
    assert set(truth.get_column("augmentations").explode().drop_nulls()) <= set(AUGMENTATIONS)
    keys = simulated.listings.get_column("image_uri")
    assert keys.str.contains(r"^images/simulator/(amazon|walmart|ebay|mercari)/[^/]+\.jpg$").all()
    assert set(keys) == set(simulated.images)
    titles = (
        simulated.listings.join(truth, on=["venue", "listing_id"])
        .group_by("product_id")
        .agg(pl.col("title").n_unique())
    )
    assert titles.get_column("title").to_list() == [4] * 10  # each venue words its title differently


def test_simulator_prices_have_cross_marketplace_gaps():
    simulated = simulate_listings(0)
    priced = simulated.listings.join(simulated.truth, on=["venue", "listing_id"])
    relative = priced.with_columns(relative=pl.col("price") / pl.col("price").max().over("product_id"))
    gaps = relative.filter(pl.col("underpriced"))
    assert gaps.height >= 5
    assert gaps.get_column("relative").max() < 0.8 < relative.filter(~pl.col("underpriced"))["relative"].median()


def test_every_source_photo_category_has_several_photos():
    per_category = (
        pl.DataFrame(
            {"category": [p.photo.category for p in product_pool()], "photo": [p.photo.name for p in product_pool()]}
        )
        .group_by("category")
        .agg(pl.col("photo").n_unique())
    )
    assert per_category.get_column("photo").min() >= 2


# --- safe decoding ---------------------------------------------------------------------------------


def test_every_bad_image_kind_is_quarantined_with_its_reason(small):
    simulated, features, quarantine = small
    conform(quarantine, QUARANTINE, name="quarantine", partition="p1")
    defects = simulated.truth.filter(pl.col("defect").is_not_null()).join(
        simulated.listings.select("venue", "listing_id", "image_uri"), on=["venue", "listing_id"]
    )
    assert set(defects.get_column("defect")) == set(DEFECTS) == set(REJECTED_AS) | set(DECODED_AS)
    for row in defects.iter_rows(named=True):
        data = simulated.images[row["image_uri"]]
        if row["defect"] in REJECTED_AS:
            rejected = quarantine.filter(pl.col("raw") == data, pl.col("source") == row["venue"])
            assert rejected.height == 1, row["defect"]
            assert rejected.row(0, named=True) | {"raw": None} == {
                "target": "image_features",
                "source": row["venue"],
                "partition": "p1",
                "reason": REJECTED_AS[row["defect"]],
                "field": "image",
                "raw": None,
            }
        else:
            described = features.filter(pl.col("listing_id") == row["listing_id"])
            assert described.height == 1, row["defect"]
            facts = described.select(*DECODED_AS[row["defect"]]).row(0, named=True)
            assert facts == DECODED_AS[row["defect"]], row["defect"]
    assert quarantine.height == len(REJECTED_AS)
    assert features.height + quarantine.height == simulated.listings.height


def test_missing_bytes_and_missing_columns():
    simulated = simulate_listings(2, 1)
    key = simulated.listings.get_column("image_uri")[0]
    records = image_records(simulated.listings, {k: v for k, v in simulated.images.items() if k != key})
    features, quarantine = image_features(records, partition="p")
    assert features.height == 3
    assert quarantine.select("reason", "field").rows() == [(MISSING_IMAGE, "image_uri")]
    assert key.encode() in quarantine.get_column("raw")[0]  # the record, since there are no bytes
    with pytest.raises(ValueError, match="missing column 'image'"):
        image_features(records.drop("image"))


def test_limits_are_checked_before_decoding():
    picture = Image.new("RGB", (100, 80), (10, 200, 30))
    data = _jpeg(picture)
    assert images.decode_image(data, "a.jpg", images.Limits(max_bytes=len(data) - 1)).reason == images.TOO_MANY_BYTES
    bomb = images.decode_image(data, "a.jpg", images.Limits(max_pixels=7_999))
    assert bomb.reason == images.TOO_MANY_PIXELS and "100x80" in bomb.detail
    assert images.decode_image(data, "a.jpg", images.Limits(min_side=81)).reason == images.TOO_SMALL
    assert isinstance(images.decode_image(data, "a.jpg", images.Limits(max_pixels=8_000)), images.Decoded)
    tiff = io.BytesIO()
    picture.save(tiff, format="TIFF")
    assert images.decode_image(tiff.getvalue(), "a.tif").reason == images.UNSUPPORTED_FORMAT
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):  # above it Pillow would only warn
        images.Limits(max_pixels=Image.MAX_IMAGE_PIXELS + 1)


def test_format_is_read_from_the_content():
    picture = Image.new("RGB", (64, 64), (200, 10, 10))
    assert images.decode_image(_png(picture), "photo.jpg").format_mismatch
    assert not images.decode_image(_png(picture), "photo.PNG").format_mismatch
    phone = io.BytesIO()  # a multi-picture JPEG, as phone cameras write: still a JPEG
    picture.save(phone, format="MPO", save_all=True, append_images=[picture])
    decoded = images.decode_image(phone.getvalue(), "photo.jpg")
    assert decoded.format == "MPO" and not decoded.format_mismatch


def test_decompression_bomb_header_is_rejected_without_decoding():
    bomb = defect_bytes("decompression_bomb", Image.new("RGB", (16, 16)))
    assert len(bomb) < 200
    rejected = images.decode_image(bomb, "huge.png")
    assert rejected.reason == images.TOO_MANY_PIXELS


def test_modes_become_rgb_faithfully():
    grey16 = np.array([[0, 32768, 65535, 65535]] * 8, dtype=np.uint16).repeat(2, axis=1)
    decoded = images.decode_image(_png(Image.fromarray(grey16)), "g.png")
    assert decoded.mode.startswith("I") and decoded.image.mode == "RGB"
    assert np.asarray(decoded.image)[0, ::2, 0].tolist() == [0, 128, 255, 255]  # scaled, not clipped

    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))  # fully transparent red: shown on white
    assert np.asarray(images.decode_image(_png(rgba), "t.png").image)[0, 0].tolist() == [255, 255, 255]

    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.info["transparency"] = 0
    assert np.asarray(images.decode_image(_png(palette), "p.png").image)[0, 0].tolist() == [0, 0, 255]

    cmyk = images.decode_image(_jpeg(Image.new("RGB", (32, 32), (200, 40, 40)).convert("CMYK")), "c.jpg")
    red, green, blue = np.asarray(cmyk.image).reshape(-1, 3).mean(axis=0)
    assert red > 150 and green < 90 and blue < 90


def test_exif_rotation_is_honoured():
    """A picture stored on its side with orientation 6 decodes upright: the same as the upright file."""
    upright = Image.new("RGB", (120, 60), (0, 0, 0))
    upright.paste((255, 255, 255), (60, 0, 120, 60))  # right half white
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 6
    stored = _jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif)
    decoded = images.decode_image(stored, "r.jpg", images.Limits(working_size=None))
    assert (decoded.width, decoded.height, decoded.orientation) == (120, 60, 6)
    pixels = np.asarray(decoded.image.convert("L"), dtype=float)
    assert pixels.shape == (60, 120) and pixels[:, :50].mean() < 30 and pixels[:, 70:].mean() > 225

    picture = base_picture(product_pool()[0])
    rotated = images.decode_image(defect_bytes("exif_rotated", picture), "x.jpg")
    plain = images.decode_image(_jpeg(picture), "x.jpg")
    assert rotated.image.size == plain.image.size
    a, b = describe(rotated.image), describe(plain.image)
    assert float(a.embedding @ b.embedding) > 0.98
    assert bin(int(a.phash, 16) ^ int(b.phash, 16)).count("1") <= 6


def test_broken_exif_costs_nothing_but_the_orientation():
    picture = Image.new("RGB", (40, 20), (50, 60, 70))
    broken = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\xff\xff"
    with pytest.warns(UserWarning, match="Corrupt EXIF"):  # Pillow's, and only a warning
        decoded = images.decode_image(_jpeg(picture, exif=broken), "b.jpg")
    assert (decoded.width, decoded.height, decoded.orientation) == (40, 20, 1)
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 42  # no such orientation
    assert images.decode_image(_jpeg(picture, exif=exif), "b.jpg").orientation == 1


def test_decode_never_raises_on_garbage():
    rng = np.random.default_rng(0)
    base = _jpeg(Image.new("RGB", (64, 64), (90, 90, 90)))
    for i in range(40):
        data = bytearray(base)
        for position in rng.integers(0, len(data), 1 + i % 8):
            data[position] = int(rng.integers(0, 256))
        result = images.decode_image(bytes(data[: len(data) - i * 7]), "g.jpg")
        assert isinstance(result, images.Decoded | images.Rejected)


# --- features ----------------------------------------------------------------------------------------


def test_features_follow_their_schema_and_are_deterministic(small):
    simulated, features, _ = small
    conform(features, IMAGE_FEATURES, name="image_features", partition="p1")
    records = image_records(simulated.listings, simulated.images)
    again, _ = image_features(records, workers=1)
    assert again.equals(features)  # threads or not, the same rows in the same order
    assert features.get_column("phash").str.len_chars().to_list() == [16] * features.height
    assert features.get_column("embedding").list.len().unique().to_list() == [EMBEDDING_DIM]
    norms = np.linalg.norm(embedding_matrix(features), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    hist_sums = features.get_column("colour_hist").list.sum().to_numpy()
    assert np.allclose(hist_sums, 1.0, atol=1e-5)
    assert features.get_column("class_label").null_count() == features.height  # no classifier given


def test_edge_and_texture_statistics_tell_surfaces_from_flat_pictures():
    flat = describe(Image.new("RGB", (128, 128), (120, 120, 120)))
    grass = describe(base_picture(next(p for p in product_pool() if p.photo.name == "grass")))
    assert flat.edge_density == 0.0 and flat.texture_contrast == 0.0
    assert grass.edge_density > 0.1 and grass.texture_entropy > flat.texture_entropy


# --- classifier ------------------------------------------------------------------------------------


def test_classifier_round_trip_through_onnx_equals_sklearn(full, tmp_path):
    simulated, features = full
    embeddings, labels = labelled_embeddings(features, simulated.truth)
    model = train_classifier(embeddings, labels)
    exported = export_onnx(model)
    assert export_onnx(train_classifier(embeddings, labels)) == exported  # deterministic, byte for byte
    classifier = OnnxClassifier(exported)
    assert classifier.classes == sorted(CATEGORIES)
    predicted, scores = classifier.predict(embeddings)
    assert predicted == model.predict(embeddings).tolist()
    assert np.allclose(classifier.predict_proba(embeddings), model.predict_proba(embeddings), atol=1e-4)
    assert np.allclose(scores, model.predict_proba(embeddings).max(axis=1), atol=1e-4)
    from_file = OnnxClassifier(classifier.save(tmp_path / "image_classifier.onnx"))
    assert from_file.version == classifier.version

    with_classes, _ = image_features(image_records(simulated.listings.head(8), simulated.images), classifier)
    assert with_classes.get_column("class_label").is_in(CATEGORIES).all()
    assert with_classes.get_column("classifier").unique().to_list() == [classifier.version]


def test_classifier_refuses_other_models():
    with pytest.raises(ValueError, match="not an ONNX model"):
        OnnxClassifier(b"not a model")
    rng = np.random.default_rng(0)
    model = train_classifier(rng.normal(size=(20, EMBEDDING_DIM)), ["a", "b"] * 10)
    proto = onnx.load_from_string(export_onnx(model))
    for prop in proto.metadata_props:
        if prop.key == "feature_version":
            prop.value = "img-v0"
    with pytest.raises(ClassifierMismatch, match="img-v0"):
        OnnxClassifier(proto.SerializeToString())
    with pytest.raises(ValueError, match="at least two classes"):
        train_classifier(rng.normal(size=(4, EMBEDDING_DIM)), ["a"] * 4)


# --- matching and the held-out evaluation ------------------------------------------------------


def test_near_duplicates_match_across_venues(full):
    simulated, features = full
    pairs = match_near_duplicates(features)
    assert (pairs.get_column("venue_a") != pairs.get_column("venue_b")).all()
    product = simulated.truth.select("venue", "listing_id", "product_id")
    judged = pairs.join(product, left_on=["venue_a", "listing_a"], right_on=["venue", "listing_id"]).join(
        product, left_on=["venue_b", "listing_b"], right_on=["venue", "listing_id"], suffix="_b"
    )
    precision = (judged.get_column("product_id") == judged.get_column("product_id_b")).mean()
    assert judged.height == pairs.height > 300 and precision > 0.95


def test_folds_hold_each_photo_out_once_and_train_on_every_category(full):
    truth = full[0].truth
    folds = photo_folds(truth)
    assert set(folds) == set(truth.get_column("source_photo"))
    photos = truth.select("category", "source_photo").unique()
    for k in set(folds.values()):
        trained = photos.filter(pl.col("source_photo").replace_strict(folds) != k)
        assert set(trained.get_column("category")) == set(CATEGORIES)


def test_held_out_evaluation_is_above_measured_floors(full):
    """Measured on seed 0 (seeds 0-3): accuracy 0.77 (0.72-0.77), colour photographs 1.0
    (0.88-1.0); matching precision 0.98 (0.98-1.0), recall 0.89 (0.87-0.89); per augmentation kind
    the weakest accuracy 0.67 (0.66-0.68), precision 0.96 (0.96-0.99) and recall 0.84 (0.79-0.84).
    The floors leave a margin for library versions, not for regressions of the design."""
    simulated, features = full
    result = evaluate_images(features, simulated.truth)
    assert result["source_photos"] == 17 and result["listings"] == features.height
    assert result["accuracy"] >= 0.68
    assert result["accuracy_by_category"]["colour_photo"]["accuracy"] >= 0.85
    matches = result["near_duplicates"]
    assert matches["precision"] >= 0.93 and matches["recall"] >= 0.82, matches
    assert set(result["accuracy_by_augmentation"]) == set(result["near_duplicates_by_augmentation"]) == set(KINDS)
    for kind, figures in result["near_duplicates_by_augmentation"].items():
        assert figures["true_pairs"] > 0, kind
        assert figures["precision"] >= 0.9 and figures["recall"] >= 0.75, (kind, figures)
    for kind, figures in result["accuracy_by_augmentation"].items():
        assert figures["listings"] > 0 and figures["accuracy"] >= 0.58, (kind, figures)


def test_the_default_classifier_is_reproducible(full):
    simulated, features = full
    assert train_on_simulator(0).version == train_onnx_classifier(features, simulated.truth).version
