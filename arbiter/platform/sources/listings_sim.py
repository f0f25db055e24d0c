"""Simulated marketplace listings: the same products on several marketplaces, with real photographs.

Every product is a photo print whose picture is a tile of one of scikit-image's bundled sample
photographs (no download: they ship inside the package), and every source photograph belongs to
one category, with several photographs per category, so a classifier can be trained on some
photographs and honestly tested on others of the same categories. Each marketplace lists the
product with its own listing id, its own wording of the title, its own price (with occasional
cross-marketplace gaps) and its own copy of the picture, made different the way sellers' copies
differ: cropped, resized, slightly rotated, saved at low JPEG quality, colour shifted, watermarked.
Which of those each copy went through is recorded in the ground truth, with the product each
listing shows, so image matching and classification can be scored per augmentation kind.

``bad_images=True`` adds one extra listing per kind of problematic image file a real feed
delivers (``DEFECTS``): some must be rejected (truncated, empty, not an image, a decompression
bomb), the others decoded correctly (PNG behind a ``.jpg`` name, CMYK, alpha, 16-bit, EXIF rotated).

Everything is deterministic per ``(seed, n_products)``; each product's listings depend only on
``seed`` and the product itself, so a larger ``n_products`` adds listings without changing others.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import numpy as np
import polars as pl
import skimage.data
from PIL import Image, ImageDraw, ImageFont

from arbiter.platform import schema
from arbiter.platform.sources.simulator import ORIGIN

SOURCE = "simulator"
BASE_SIDE = 512  # the long side of a product's clean picture
MIN_TILE_STD = 10.0  # tiles flatter than this (a patch of sky, a black corner) make no product


@dataclass(frozen=True)
class SourcePhoto:
    """One bundled photograph (``skimage.data.<name>``), its category and the grid of tiles it is
    cut into, each tile one product."""

    name: str
    category: str
    grid: tuple[int, int]  # rows, columns


# Categories and their photographs: what kind of picture a listing shows (a colour photograph, a
# black-and-white one, a surface texture, a printed or written page), with at least two
# photographs each so one can be held out. Microscope, fundus and telescope images count as the
# photographs they are. ``motorcycle_right`` is left out on purpose: it is the other half of a
# stereo pair, nearly the same picture as ``motorcycle_left``, and would leak across a held-out split.
SOURCE_PHOTOS = (
    SourcePhoto("brick", "texture", (3, 3)),
    SourcePhoto("grass", "texture", (3, 3)),
    SourcePhoto("gravel", "texture", (3, 3)),
    SourcePhoto("page", "document", (1, 3)),
    SourcePhoto("text", "document", (1, 3)),
    SourcePhoto("astronaut", "colour_photo", (2, 2)),
    SourcePhoto("coffee", "colour_photo", (2, 2)),
    SourcePhoto("chelsea", "colour_photo", (2, 2)),
    SourcePhoto("rocket", "colour_photo", (2, 2)),
    SourcePhoto("motorcycle_left", "colour_photo", (2, 2)),
    SourcePhoto("immunohistochemistry", "colour_photo", (2, 2)),
    SourcePhoto("retina", "colour_photo", (2, 2)),
    SourcePhoto("hubble_deep_field", "colour_photo", (2, 2)),
    SourcePhoto("camera", "mono_photo", (3, 3)),
    SourcePhoto("coins", "mono_photo", (2, 2)),
    SourcePhoto("moon", "mono_photo", (3, 3)),
    SourcePhoto("cell", "mono_photo", (3, 3)),
)
CATEGORIES = tuple(dict.fromkeys(p.category for p in SOURCE_PHOTOS))
SUBJECTS = {
    "texture": "Texture Study",
    "document": "Typography Print",
    "colour_photo": "Photo Print",
    "mono_photo": "Black & White Photo",
}

AUGMENTATIONS = ("crop", "resize", "rotate", "jpeg_quality", "colour_shift", "watermark")


@dataclass(frozen=True)
class Marketplace:
    """A marketplace: how it names listings, words titles, prices and alters pictures."""

    venue: str
    price_factor: float  # typical price relative to the product's list price
    augmentation_odds: dict[str, float]  # probability of each augmentation per listing
    title: Callable[[dict], str]
    listing_id: Callable[[np.random.Generator], str]
    watermark: str


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, n))


_ASIN_CHARS = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))

MARKETPLACES = (
    Marketplace(
        "amazon",
        1.00,
        {"crop": 0.1, "resize": 0.3, "rotate": 0.0, "jpeg_quality": 0.05, "colour_shift": 0.1, "watermark": 0.0},
        lambda p: f"{p['brand']} {p['subject']} '{p['photo_title']}' {p['model']}, {p['size']}, {p['finish']} Finish",
        lambda rng: "B0" + "".join(rng.choice(_ASIN_CHARS, 8)),
        "",
    ),
    Marketplace(
        "walmart",
        0.97,
        {"crop": 0.5, "resize": 0.6, "rotate": 0.1, "jpeg_quality": 0.2, "colour_shift": 0.2, "watermark": 0.1},
        lambda p: f"{p['brand']} {p['photo_title']} {p['subject']} ({p['size']}, {p['finish'].lower()}) {p['model']}",
        lambda rng: str(int(rng.integers(1, 10))) + _digits(rng, 8),
        "walmart seller",
    ),
    Marketplace(
        "ebay",
        0.93,
        {"crop": 0.4, "resize": 0.5, "rotate": 0.4, "jpeg_quality": 0.4, "colour_shift": 0.3, "watermark": 0.4},
        lambda p: f"NEW {p['brand'].upper()} {p['model']} {p['photo_title'].upper()} PRINT {p['size']} FREE SHIPPING",
        lambda rng: str(int(rng.integers(1, 4))) + _digits(rng, 11),
        "ebay: printdeals",
    ),
    Marketplace(
        "mercari",
        0.86,
        {"crop": 0.6, "resize": 0.6, "rotate": 0.5, "jpeg_quality": 0.3, "colour_shift": 0.6, "watermark": 0.3},
        lambda p: f"{p['photo_title']} print by {p['brand']} - {p['size']} {p['finish'].lower()} - like new",
        lambda rng: "m" + _digits(rng, 11),
        "@mercari_seller",
    ),
)
VENUES = tuple(m.venue for m in MARKETPLACES)

BRANDS = ("Lumen & Co", "PrintHaus", "Northlight", "Artifex", "Gallery Nine", "Paper Moon", "Studio Kite")
SIZES = {"8x10 in": 14.99, "12x16 in": 24.99, "18x24 in": 39.99, "24x36 in": 59.99}
FINISHES = ("Matte", "Glossy", "Satin", "Canvas")
GAP_ODDS = 0.2  # share of products one marketplace lists well below the others: an arbitrage gap

# Problem files a real feed delivers, and the extension each is stored under.
DEFECTS = {
    "truncated_jpeg": "jpg",
    "empty_file": "jpg",
    "not_an_image": "jpg",
    "decompression_bomb": "png",
    "png_named_jpg": "jpg",
    "cmyk_jpeg": "jpg",
    "rgba_png": "png",
    "gray16_png": "png",
    "exif_rotated": "jpg",
}

TRUTH_SCHEMA = {
    "venue": pl.String,
    "listing_id": pl.String,
    "product_id": pl.String,
    "category": pl.String,
    "source_photo": pl.String,
    "augmentations": pl.List(pl.String),
    "underpriced": pl.Boolean,  # this listing is the gap: well below the product's other prices
    "defect": pl.String,  # one of DEFECTS for a problem file, else null
}


@dataclass(frozen=True)
class Product:
    product_id: str
    index: int  # position in the product pool: the seed of everything about its listings
    photo: SourcePhoto
    box: tuple[int, int, int, int]  # the tile of the photograph: left, upper, right, lower


@dataclass(frozen=True)
class SimulatedListings:
    """``listings`` (the contract's LISTINGS), the image bytes by ``image_uri``, and the truth."""

    listings: pl.DataFrame
    images: dict[str, bytes]
    truth: pl.DataFrame


@cache
def photo_pixels(name: str) -> np.ndarray:
    """A bundled photograph as 8-bit RGB."""
    loaded = skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()
    pixels = np.asarray(loaded)
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3].astype(np.uint8))


@cache
def product_pool() -> tuple[Product, ...]:
    """Every product the simulator can list: the tiles of every source photograph that are not flat."""
    products = []
    for photo in SOURCE_PHOTOS:
        pixels = photo_pixels(photo.name)
        rows, cols = photo.grid
        height, width = pixels.shape[:2]
        for r in range(rows):
            for c in range(cols):
                box = (c * width // cols, r * height // rows, (c + 1) * width // cols, (r + 1) * height // rows)
                tile = pixels[box[1] : box[3], box[0] : box[2]]
                if tile.mean(axis=-1).std() >= MIN_TILE_STD:
                    products.append(Product(f"{photo.name}-{r}{c}", len(products), photo, box))
    return tuple(products)


def choose_products(seed: int, n_products: int | None) -> list[Product]:
    """``n_products`` of the pool (all when None), chosen by ``seed``, the categories taking turns
    so even a handful of products covers every category."""
    pool = product_pool()
    if n_products is None:
        n_products = len(pool)
    if not 1 <= n_products <= len(pool):
        raise ValueError(f"n_products must be between 1 and {len(pool)} (the product pool), got {n_products}")
    rng = np.random.default_rng([seed, 0])
    queues = {c: [p for p in pool if p.photo.category == c] for c in CATEGORIES}
    for queue in queues.values():
        rng.shuffle(queue)
    chosen: list[Product] = []
    while len(chosen) < n_products:
        for category in CATEGORIES:
            if queues[category] and len(chosen) < n_products:
                chosen.append(queues[category].pop())
    return chosen


def base_picture(product: Product) -> Image.Image:
    """The product's clean picture: its tile, long side ``BASE_SIDE``."""
    left, upper, right, lower = product.box
    tile = Image.fromarray(photo_pixels(product.photo.name)[upper:lower, left:right])
    scale = BASE_SIDE / max(tile.size)
    return tile.resize((round(tile.width * scale), round(tile.height * scale)), Image.Resampling.LANCZOS)


def _crop(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    keep = rng.uniform(0.8, 0.95)
    w, h = round(picture.width * keep), round(picture.height * keep)
    left, upper = int(rng.integers(0, picture.width - w + 1)), int(rng.integers(0, picture.height - h + 1))
    return picture.crop((left, upper, left + w, upper + h))


def _rotate(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    angle = rng.uniform(2.0, 8.0) * rng.choice([-1.0, 1.0])
    return picture.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))


def _colour_shift(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A camera's or screen's colour error: a hue turn, a tint, a brightness change."""
    hsv = np.asarray(picture.convert("HSV")).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(rng.integers(6, 24)) * int(rng.choice([-1, 1]))) % 256
    shifted = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")).astype(np.float32)
    tint = 1.0 + rng.uniform(-0.1, 0.1) * np.array([1.0, 0.0, -1.0])
    shifted *= tint * rng.uniform(0.85, 1.15)
    return Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8))


def _watermark(picture: Image.Image, rng: np.random.Generator, text: str) -> Image.Image:
    """The seller's or marketplace's mark: semi-transparent text with a shadow, somewhere on the picture."""
    overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = ImageFont.load_default(size=max(12, round(picture.height * rng.uniform(0.06, 0.11))))
    left, upper, right, lower = draw.textbbox((0, 0), text, font=font)
    x = int(rng.integers(0, max(1, picture.width - (right - left))))
    y = int(rng.integers(0, max(1, picture.height - (lower - upper))))
    alpha = int(rng.integers(110, 200))
    draw.text((x + 2, y + 2), text, font=font, fill=(0, 0, 0, alpha // 2))
    draw.text((x, y), text, font=font, fill=(255, 255, 255, alpha))
    return Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB")


def _resize(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    side = int(rng.integers(256, 900))
    scale = side / max(picture.size)
    return picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))


def _jpeg(picture: Image.Image, quality: int, **options) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality, **options)
    return out.getvalue()


def _png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def marketplace_picture(picture: Image.Image, market: Marketplace, rng: np.random.Generator) -> tuple[bytes, list[str]]:
    """The marketplace's copy of ``picture`` as JPEG bytes, and the augmentations it went through."""
    applied = [kind for kind in AUGMENTATIONS if rng.random() < market.augmentation_odds[kind]]
    if "watermark" in applied and not market.watermark:
        applied.remove("watermark")
    if "crop" in applied:
        picture = _crop(picture, rng)
    if "rotate" in applied:
        picture = _rotate(picture, rng)
    if "colour_shift" in applied:
        picture = _colour_shift(picture, rng)
    if "watermark" in applied:
        picture = _watermark(picture, rng, market.watermark)
    if "resize" in applied:
        picture = _resize(picture, rng)
    quality = int(rng.integers(12, 40)) if "jpeg_quality" in applied else int(rng.integers(80, 96))
    return _jpeg(picture, quality), applied


def _attributes(product: Product, seed: int) -> dict:
    """What the product is (brand, model, size, finish, list price): the same on every listing of it."""
    rng = np.random.default_rng([seed, 1, product.index])
    size = str(rng.choice(list(SIZES)))
    return {
        "brand": str(rng.choice(BRANDS)),
        "model": f"{product.photo.name[:2].upper()}-{int(rng.integers(100, 10_000))}",
        "size": size,
        "finish": str(rng.choice(FINISHES)),
        "subject": SUBJECTS[product.photo.category],
        "photo_title": product.photo.name.replace("_", " ").title() + f" No. {product.product_id[-2:]}",
        "list_price": SIZES[size] * rng.uniform(0.9, 1.6),
    }


def _listings_of(product: Product, seed: int) -> tuple[list[dict], dict[str, bytes], list[dict]]:
    """One listing per marketplace for ``product``: rows, image bytes by key, truth rows."""
    rng = np.random.default_rng([seed, 2, product.index])
    attributes = _attributes(product, seed)
    gap_venue = str(rng.choice(VENUES)) if rng.random() < GAP_ODDS else None
    picture = base_picture(product)
    rows, images, truth = [], {}, []
    listed = ORIGIN + timedelta(minutes=int(product.index) * 7)
    for market in MARKETPLACES:
        listing_id = market.listing_id(rng)
        price = attributes["list_price"] * market.price_factor * float(np.exp(rng.normal(0.0, 0.04)))
        if market.venue == gap_venue:
            price *= rng.uniform(0.6, 0.75)
        data, applied = marketplace_picture(picture, market, rng)
        key = f"images/{SOURCE}/{market.venue}/{listing_id}.jpg"
        images[key] = data
        rows.append(
            {
                "ts": listed + timedelta(minutes=int(rng.integers(0, 24 * 60))),
                "venue": market.venue,
                "listing_id": listing_id,
                "title": market.title(attributes),
                "description": _description(product, attributes, market),
                "brand": attributes["brand"],
                "price": round(price, 2),
                "currency": "USD",
                "image_uri": key,
            }
        )
        truth.append(_truth(market.venue, listing_id, product, applied, market.venue == gap_venue, None))
    return rows, images, truth


def _description(product: Product, attributes: dict, market: Marketplace) -> str:
    subject = product.photo.name.replace("_", " ")
    return (
        f"{attributes['brand']} {attributes['subject'].lower()} of {subject}, model {attributes['model']}. "
        f"Size {attributes['size']}, {attributes['finish'].lower()} finish. Sold on {market.venue}."
    )


def _truth(
    venue: str, listing_id: str, product: Product, augmentations: list[str], underpriced: bool, defect: str | None
) -> dict:
    return {
        "venue": venue,
        "listing_id": listing_id,
        "product_id": product.product_id,
        "category": product.photo.category,
        "source_photo": product.photo.name,
        "augmentations": augmentations,
        "underpriced": underpriced,
        "defect": defect,
    }


def defect_bytes(defect: str, picture: Image.Image) -> bytes:
    """``picture`` stored the way ``defect`` (one of ``DEFECTS``) describes."""
    if defect == "truncated_jpeg":
        data = _jpeg(picture, 90)
        return data[: len(data) // 2]
    if defect == "empty_file":
        return b""
    if defect == "not_an_image":
        return b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>"
    if defect == "decompression_bomb":
        return _bomb_png(picture)
    if defect == "png_named_jpg":
        return _png(picture)
    if defect == "cmyk_jpeg":
        return _jpeg(picture.convert("CMYK"), 90)
    if defect == "rgba_png":
        alpha = Image.new("L", picture.size, 0)
        ImageDraw.Draw(alpha).ellipse((0, 0, picture.width - 1, picture.height - 1), fill=255)
        rgba = picture.convert("RGBA")
        rgba.putalpha(alpha)
        return _png(rgba)
    if defect == "gray16_png":
        grey = np.asarray(picture.convert("L")).astype(np.uint16) * 257
        return _png(Image.fromarray(grey))
    if defect == "exif_rotated":
        # Stored lying on its side, as a phone writes it, with orientation 6: "rotate 90° clockwise to view".
        exif = Image.Exif()
        exif[0x0112] = 6
        return _jpeg(picture.transpose(Image.Transpose.ROTATE_90), 90, exif=exif)
    raise ValueError(f"unknown defect {defect!r}; known: {', '.join(DEFECTS)}")


def _bomb_png(picture: Image.Image, side: int = 100_000) -> bytes:
    """A valid small PNG whose header claims ``side`` x ``side`` pixels: a decompression bomb's header."""
    data = bytearray(_png(picture.convert("L").resize((8, 8))))
    ihdr = 8  # after the signature: length (4), b"IHDR" (4), then width, height
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", side, side)
    body = bytes(data[ihdr + 4 : ihdr + 8 + 13])
    data[ihdr + 8 + 13 : ihdr + 8 + 17] = struct.pack(">I", zlib.crc32(body))
    return bytes(data)


def _defect_listings(products: list[Product], seed: int) -> tuple[list[dict], dict[str, bytes], list[dict]]:
    """One extra listing per defect, of the chosen products in turn, on the marketplaces in turn."""
    rng = np.random.default_rng([seed, 3])
    rows, images, truth = [], {}, []
    for i, (defect, extension) in enumerate(DEFECTS.items()):
        product, market = products[i % len(products)], MARKETPLACES[i % len(MARKETPLACES)]
        listing_id = market.listing_id(rng)
        key = f"images/{SOURCE}/{market.venue}/{listing_id}.{extension}"
        images[key] = defect_bytes(defect, base_picture(product))
        attributes = _attributes(product, seed)
        rows.append(
            {
                "ts": ORIGIN + timedelta(days=1, minutes=i),
                "venue": market.venue,
                "listing_id": listing_id,
                "title": market.title(attributes),
                "description": _description(product, attributes, market),
                "brand": attributes["brand"],
                "price": round(attributes["list_price"] * market.price_factor, 2),
                "currency": "USD",
                "image_uri": key,
            }
        )
        truth.append(_truth(market.venue, listing_id, product, [], False, defect))
    return rows, images, truth


def simulate_listings(seed: int = 0, n_products: int | None = None, *, bad_images: bool = False) -> SimulatedListings:
    """Listings of ``n_products`` products (all of ``product_pool()`` when None) on every marketplace.

    Returns the ``listings`` frame (the contract's LISTINGS, sorted by ``ts``), the image bytes by
    ``image_uri`` and the ground truth (``TRUTH_SCHEMA``, one row per listing). With ``bad_images``,
    one more listing per ``DEFECTS`` kind. Raises ``ValueError`` for ``n_products`` outside the pool.
    """
    products = choose_products(seed, n_products)
    rows, images, truth = [], {}, []
    for product in products:
        product_rows, product_images, product_truth = _listings_of(product, seed)
        rows += product_rows
        images |= product_images
        truth += product_truth
    if bad_images:
        defect_rows, defect_images, defect_truth = _defect_listings(products, seed)
        rows += defect_rows
        images |= defect_images
        truth += defect_truth
    listings = pl.DataFrame(rows, schema=pl.from_arrow(schema.LISTINGS.empty_table()).schema, orient="row")
    listings = listings.sort("ts", "venue", "listing_id")
    listings = schema.conform(listings, schema.LISTINGS, name="listings", partition=SOURCE)
    return SimulatedListings(listings, images, pl.DataFrame(truth, schema=TRUTH_SCHEMA, orient="row"))
