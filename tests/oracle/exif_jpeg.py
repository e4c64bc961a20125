"""Writes a JPEG copy of an image with an EXIF Orientation tag (for the EXIF test).

    exif_jpeg.py SRC DST ORIENTATION

The pixels are stored unrotated; readers that honour EXIF (cv2.imread) rotate them.
"""

import sys

from PIL import Image


def main() -> None:
    src, dst, orientation = sys.argv[1], sys.argv[2], int(sys.argv[3])
    img = Image.open(src).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(dst, "JPEG", quality=92, exif=exif.tobytes())


if __name__ == "__main__":
    main()
