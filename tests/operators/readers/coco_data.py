"""Small COCO datasets written by the tests: JPEG images (OpenCV) and an annotation file that exercises what
DALI's COCO reader distinguishes (image ids out of file order, categories out of id order, annotations out
of id order, several polygons per mask, crowd RLE masks, boxes under the size threshold, images without
annotations)."""

from __future__ import annotations

import json
import os

import numpy as np


def write_coco(directory: str, n_images: int = 12, seed: int = 0, sizes: tuple[int, int] = (20, 48)) -> dict:
    """Write ``directory/images/*.jpg`` and ``directory/instances.json``; return the reader's arguments.

    Deterministic for a given ``seed``. Image ``k`` has ``k % 5`` annotations (so some images have none).
    """
    import cv2

    rng = np.random.default_rng(seed)
    image_dir = os.path.join(directory, "images")
    os.makedirs(image_dir, exist_ok=True)
    categories = [{"id": cid, "name": f"c{cid}"} for cid in (7, 3, 12, 5)]
    images, annotations = [], []
    for k in range(n_images):
        h, w = (int(v) for v in rng.integers(sizes[0], sizes[1], 2))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        name = f"img_{k:03d}.jpg"
        cv2.imwrite(os.path.join(image_dir, name), pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
        image_id = 1000 + (k * 7919) % (n_images * 13)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for j in range(k % 5):
            x, y = float(rng.uniform(0, w - 6)), float(rng.uniform(0, h - 6))
            bw, bh = float(rng.uniform(1, w - x)), float(rng.uniform(1, h - y))
            if j == 3:
                bw = 0.05  # under the default size_threshold
            ann = {
                "id": 50_000 - len(annotations) * 3,
                "image_id": image_id,
                "category_id": categories[(k + j) % 4]["id"],
                "bbox": [x, y, bw, bh],
                "area": bw * bh,
                "iscrowd": int(j == 2),
            }
            if j == 2:  # a crowd annotation: an RLE mask (column-major counts)
                counts, total = [], h * w
                start = int(rng.integers(0, total // 2))
                counts = [start, int(rng.integers(1, total // 4)), 0]
                counts[2] = total - counts[0] - counts[1]
                ann["segmentation"] = {"counts": counts, "size": [h, w]}
            else:
                polys = [[x, y, x + bw, y + 0.3, x + bw * 0.8, y + bh, x + 0.2, y + bh * 0.9]]
                if j == 1:
                    polys.append([x + 1, y + 1, x + bw / 2, y + 1.5, x + 1.2, y + bh / 2])
                ann["segmentation"] = polys
            annotations.append(ann)
    rng.shuffle(images)
    data = {"images": images, "annotations": annotations, "categories": categories}
    path = os.path.join(directory, "instances.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return {"file_root": image_dir, "annotations_file": path}


def example_dataset(directory: str) -> dict:
    """The operator example's dataset (relative paths)."""
    args = write_coco(directory, n_images=9, seed=3)
    return {k: os.path.relpath(v) for k, v in args.items()}
