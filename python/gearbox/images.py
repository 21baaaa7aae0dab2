# SPDX-License-Identifier: MIT
"""Inputs for INFER: numpy arrays, PIL images, PNG/PGM bytes or files.

The daemon takes a model's C x H x W values either as float32, already
normalised, or as 8-bit pixels that it normalises itself. ``to_input``
turns what a caller has into one of the two:

- a numpy array of ``uint8`` -> pixels; of a float type -> float32 values
  (C x H x W, or H x W x C for colour images, or anything of the right size);
- a PIL image -> pixels (converted to grey or RGB as the model wants, R, G,
  B planes);
- ``bytes`` holding a PNG or a binary PGM (P5, comment lines allowed, as
  ``gearboxctl --image`` reads them) -> pixels; other ``bytes`` are taken as
  raw pixels;
- a path (``str`` or ``os.PathLike``) to a PNG or PGM file -> pixels;
- a list, tuple or ``array.array`` of numbers -> float32 values.

PNG is decoded here with ``zlib`` (8- and 16-bit, grey, RGB, palette, with
or without alpha, not interlaced); colour becomes R, G, B planes, alpha is
composited onto black (as libpng's simplified API does for gearboxctl)."""
import array
import math
import os
import struct
import sys
import zlib

from .errors import BadInputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pgm(data):
    """(channels, height, width, pixels) of a binary PGM."""
    pos = 2
    fields = []
    n = len(data)
    while len(fields) < 3:
        while pos < n and data[pos] in b" \t\r\n\v\f":
            pos += 1
        if pos < n and data[pos] == ord("#"):
            while pos < n and data[pos] not in b"\r\n":
                pos += 1
            continue
        start = pos
        while pos < n and data[pos] in b"0123456789":
            pos += 1
        if pos == start or pos >= n:
            raise BadInputError("not an 8-bit binary PGM (P5, maxval 255) image")
        fields.append(int(data[start:pos]))
        if data[pos] == ord("#"):  # a comment right after the number ends the token
            while pos < n and data[pos] not in b"\r\n":
                pos += 1
    width, height, maxval = fields
    pos += 1  # the one white-space character before the raster
    if maxval != 255 or width == 0 or height == 0:
        raise BadInputError("not an 8-bit binary PGM (P5, maxval 255) image")
    pixels = data[pos:pos + width * height]
    if len(pixels) != width * height:
        raise BadInputError("truncated PGM image")
    return 1, height, width, bytes(pixels)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _png(data):
    """(channels, height, width, pixels as planes) of a PNG."""
    pos = 8
    ihdr = None
    idat = bytearray()
    palette = None
    trns = None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise BadInputError("not a readable PNG (no IHDR)")
    width, height, depth, colour, _, _, interlace = ihdr
    if interlace:
        raise BadInputError("interlaced PNG: not supported here (save it without interlacing)")
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if samples is None or depth not in (1, 2, 4, 8, 16) or (depth < 8 and colour not in (0, 3)) or \
            (colour == 3 and depth == 16):
        raise BadInputError(f"PNG with colour type {colour} and bit depth {depth}: not a valid PNG")
    try:
        raw = zlib.decompress(bytes(idat))
    except zlib.error as e:
        raise BadInputError(f"cannot decode the PNG ({e})") from None
    bits = samples * depth
    stride = (width * bits + 7) // 8
    bpp = max(1, bits // 8)
    if len(raw) < height * (stride + 1):
        raise BadInputError("truncated PNG image")
    rows = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 255
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                upleft = prev[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, prev[i], upleft)) & 255
        elif f != 0:
            raise BadInputError(f"PNG row filter {f}: not a valid PNG")
        rows.append(line)
        prev = line
    # samples per pixel as 8-bit values
    def row_samples(line):
        if depth == 8:
            return line
        if depth == 16:
            return line[0::2]
        per = 8 // depth
        mask = (1 << depth) - 1
        out = bytearray(width * samples)
        for i in range(width * samples):
            v = (line[i // per] >> (8 - depth * (1 + i % per))) & mask
            out[i] = v if colour == 3 else v * 255 // mask
        return out
    grey = colour in (0, 4)  # palette images count as colour, as libpng says for gearboxctl
    channels = 1 if grey else 3
    planes = [bytearray(width * height) for _ in range(channels)]
    alpha_pal = trns if colour == 3 and trns else b""
    for y, line in enumerate(rows):
        s = row_samples(line)
        for x in range(width):
            if colour == 3:
                idx = s[x]
                if palette is None or 3 * idx + 2 >= len(palette):
                    raise BadInputError("PNG palette index out of range")
                px = palette[3 * idx:3 * idx + 3]
                a = alpha_pal[idx] if idx < len(alpha_pal) else 255
            else:
                px = s[x * samples:(x + 1) * samples]
                a = px[-1] if colour in (4, 6) else 255
                if colour in (0, 4):
                    px = px[:1]
            for ch in range(channels):
                v = px[ch] if len(px) > ch else px[0]
                planes[ch][y * width + x] = (v * a + 127) // 255 if a != 255 else v
    return channels, height, width, b"".join(bytes(p) for p in planes)


def decode_image(data):
    """(channels, height, width, pixels) of PNG or PGM bytes, the pixels as
    planes (C x H x W)."""
    data = bytes(data)
    if data.startswith(PNG_MAGIC):
        return _png(data)
    if data.startswith(b"P5"):
        return _pgm(data)
    raise BadInputError("not a PNG or a binary PGM (P5) image")


def _numpy():
    return sys.modules.get("numpy")


def _is_pil(x):
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(x, pil.Image)


def _check_finite(values):
    for v in values:
        if not math.isfinite(v):
            raise BadInputError("the input holds NaN or infinity")


def to_input(x, shape=None):
    """(payload bytes, pixels) for one INFER: ``pixels`` True when the bytes
    are 8-bit pixels, False for float32 values. ``shape`` is the model's
    (C, H, W), used to lay out PIL images and H x W x C arrays."""
    np = _numpy()
    channels = shape[0] if shape else None
    if np is not None and isinstance(x, np.ndarray):
        if x.dtype == np.uint8:
            a = x
        elif np.issubdtype(x.dtype, np.floating):
            a = x.astype("<f4", copy=False)
            if not np.all(np.isfinite(a)):
                raise BadInputError("the input holds NaN or infinity")
        else:
            raise BadInputError(f"a numpy array of {x.dtype}: give uint8 pixels or float32 values")
        # H x W x C colour images (PIL's and most libraries' order) become planes
        if shape and a.ndim == 3 and a.shape == (shape[1], shape[2], shape[0]) and a.shape != tuple(shape):
            a = a.transpose(2, 0, 1)
        return np.ascontiguousarray(a).tobytes(), a.dtype == np.uint8
    if _is_pil(x):
        img = x.convert("L" if channels in (None, 1) else "RGB")
        w, h = img.size
        data = img.tobytes()
        if img.mode == "RGB":
            data = b"".join(data[c::3] for c in range(3))
        return data, True
    if isinstance(x, (str, os.PathLike)):
        with open(x, "rb") as f:
            return decode_image(f.read())[3], True
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        if b.startswith(PNG_MAGIC) or b.startswith(b"P5"):
            return decode_image(b)[3], True
        return b, True
    if isinstance(x, array.array) and x.typecode == "B":
        return x.tobytes(), True
    try:
        values = [float(v) for v in x]
    except TypeError:
        raise BadInputError(f"cannot make an input of {type(x).__name__}: give a numpy array, a PIL image, "
                            "PNG/PGM bytes, a path or a list of floats") from None
    _check_finite(values)
    return struct.pack(f"<{len(values)}f", *values), False
