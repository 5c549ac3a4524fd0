"""The installed command: ``inpaintaff segment DIR`` (masks for a folder of images).

It composes the same Hydra config as ``python predict.py task=segment_folder data=folder`` from
the configs inside the package, so it works from any folder and from an installed wheel; any
further ``key=value`` arguments are Hydra overrides (``trainer.devices=2``, ``task.alpha=2``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import inpaintaff.utils.threads  # noqa: F401  (before torch loads: idle threads sleep)


def model_overrides(model: str) -> list[str]:
    """The folder command's checkpoints for ``--model``: a shipped model's name, or a student checkpoint
    with its own FGNET when the recipe shipped one beside it (``<name>.fgnet.ckpt``; else the
    foreground stays the default one)."""
    from inpaintaff.segment.alpha import checkpoint_fgnet_file
    from inpaintaff.segmenter import PRETRAINED

    if model in PRETRAINED:
        return [f"task.affinities_ckpt={PRETRAINED[model]['affinities']}",
                f"task.foreground.ckpt={PRETRAINED[model]['foreground']}"]
    path = Path(model).expanduser()
    if path.suffix != ".ckpt":
        known = ", ".join(sorted(PRETRAINED))
        raise SystemExit(f"inpaintaff: error: --model {model}: neither a shipped model ({known}) nor a .ckpt file")
    overrides = [f"task.affinities_ckpt={path.resolve()}"]
    fgnet = checkpoint_fgnet_file(path)
    if fgnet.is_file():
        overrides.append(f"task.foreground.ckpt={fgnet.resolve()}")
    return overrides


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="inpaintaff", description="Instance segmentation of nuclei (InpaintAff).")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("segment", help="masks for every image of a folder",
                       description="Segment every image of DIR; masks/<name>.tif, overlays/<name>.png, "
                                   "images.csv and objects.csv go to --out.")
    s.add_argument("images", help="folder of images (TIFF or PNG)")
    s.add_argument("--out", help="output folder (default: <DIR name>_inpaintaff in the current folder)")
    s.add_argument("--pattern", help="glob of the images in DIR (default: *.tif, *.tiff, *.png)")
    s.add_argument("--masks", help="folder of label images with the same names: scores each image")
    s.add_argument("--diameter", type=float, help="nucleus diameter in px (default: estimated per image)")
    s.add_argument("--channel", type=int, help="channel of multi-channel images")
    s.add_argument("--planes", action="store_true",
                   help="3D TIFFs are stacks of planes (time points or z slices) even without T or Z axes in "
                        "their metadata: each plane is segmented, masks/<name>.tif is a label stack")
    s.add_argument("--model", help="the shipped model (hela_tuned: default, HeLa's student fine-tuned on FGNET's "
                                   "31 labeled nuclei; hela: that student as trained without labels; dsb: trained "
                                   "without labels on the 2018 Data Science Bowl's fluorescence nuclei) or a "
                                   "student checkpoint of your own "
                                   "(e.g. runs/selfsup/student.ckpt, with its .alpha.json beside it)")
    s.add_argument("--devices", type=int, help="processes (CPU) or GPUs that split the images")
    s.add_argument("--overwrite", action="store_true", help="recompute kept results of other settings")
    s.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. task.alpha=2 trainer.accelerator=gpu")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    unknown = [e for e in extra if e.startswith("-") or "=" not in e]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [*args.overrides, *extra]  # key=value overrides may follow the options
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    images = Path(args.images).expanduser().resolve()
    out = Path(args.out).expanduser().resolve() if args.out else Path.cwd() / f"{images.name}_inpaintaff"
    ov = [f"data.images={images}", f"paths.output_dir={out}"]
    if args.pattern:
        ov.append(f"data.pattern='{args.pattern}'")
    if args.masks:
        ov.append(f"data.masks={Path(args.masks).expanduser().resolve()}")
    if args.diameter is not None:
        ov.append(f"data.diameter={args.diameter}")
    if args.channel is not None:
        ov.append(f"data.channel={args.channel}")
    if args.planes:
        ov.append("data.planes=true")
    if args.model:
        ov += model_overrides(args.model)
    if args.devices:
        ov += [f"trainer.devices={args.devices}"] + (["trainer.strategy=ddp_spawn"] if args.devices > 1 else [])
    if args.overwrite:
        ov.append("task.overwrite=true")
    from inpaintaff.utils.errors import InputError
    from inpaintaff.utils.signals import sigterm_stops

    try:
        with sigterm_stops():  # SIGTERM: stop after the image under way (finished ones kept), status 143
            from inpaintaff.tasks.segment_folder import run_segment_folder  # torch loads here, after the threads

            result = run_segment_folder([*ov, *args.overrides])
    except InputError as exc:
        print(f"inpaintaff: error: {exc}", file=sys.stderr)
        return 2
    if result:
        seg = result.get("seg")
        print(f"{result['n_images']} image(s), {result['n_objects']} object(s) -> {result['out_dir']}"
              + ("" if seg is None else f"; SEG {seg:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
