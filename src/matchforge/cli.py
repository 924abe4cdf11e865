"""``matchforge <command> ...``: every stage of the workflow, runnable by hand.

Each command lives in its own module, which provides ``add_arguments(parser)`` and ``run(args)``.
Modules are imported only when their command runs, so ``matchforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from matchforge.errors import MatchforgeError

# command -> (module, one-line help). Keep sorted by pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "sfm": ("matchforge.sfm.reconstruct", "photos -> undistorted PINHOLE COLMAP model (pycolmap)"),
    "depth": ("matchforge.depth.predict", "predict raw depth per undistorted image (Depth-Anything or sparse SfM)"),
    "align-depth": ("matchforge.depth.align", "align raw depth to the SfM scale (MegaDepth H5 files, unfiltered)"),
    "depth-consistency": ("matchforge.depth.consistency", "keep the depth other views confirm; write the training H5 files"),
    "depth-qa": ("matchforge.depth.qa", "alignment residual, coverage and track-transfer error of depth maps"),
    "depth-shape": ("matchforge.depth.shape", "focal length and point cloud per depth map from a shift/focal model"),
    "scene-info": ("matchforge.dataset.scene_info", "MegaDepth scene-info files with overlap buckets"),
    "dataset": ("matchforge.dataset.build", "splits, MegaDepth layout and LoFTR data config for a dataset"),
    "export-gluefactory": ("matchforge.dataset.export", "a built dataset in glue-factory's posed-images layout (LightGlue training)"),
    "loftr-train": ("matchforge.loftr.train", "train LoFTR (dual-softmax or optimal transport)"),
    "match-pairs": ("matchforge.evaluation.match_pairs", "match every pair of a test set once and store the matches (.h5)"),
    "score": ("matchforge.evaluation.score", "score stored matches: relative pose, homography or localization, with 95 % intervals"),
    "match": ("matchforge.matchers.match", "match two images (or a video) and draw the matches"),
    "posfeat-train": ("matchforge.posfeat.train", "train PoSFeat (description net, then detection net)"),
    "extract": ("matchforge.posfeat.extract", "extract PoSFeat (or SIFT-described) keypoints and descriptors"),
    "reconstruct-eval": ("matchforge.evaluation.reconstruct_eval", "reconstruction from stored features (the ETH benchmark's columns)"),
    "shiftfocal-data": ("matchforge.shiftfocal.data", "generate shift/focal training data from RGB-D datasets"),
    "shiftfocal-train": ("matchforge.shiftfocal.train", "train the shift/focal point-cloud model"),
    "shiftfocal-eval": ("matchforge.shiftfocal.evaluate", "evaluate shift/focal recovery on held-out items"),
    "localization-pairs": ("matchforge.evaluation.retrieval", "retrieve the database images of a localization test set's queries"),
    "summarize": ("matchforge.summary", "one table and figure per kind of result (scenes, relpose, homography, localization, reconstruction, shape)"),
    "doc-tables": ("matchforge.doc_tables", "rewrite the docs' generated tables from a run's results/summary"),
    "config-docs": ("matchforge.config_docs", "regenerate the run-config schemas and config/README.md's option tables"),
    "recover-shape": ("matchforge.shiftfocal.recover", "recover focal and depth shift of one relative depth map"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: matchforge <command> [options]   (matchforge <command> -h for its options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(_usage())
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command '{argv[0]}'", file=sys.stderr)
            raise SystemExit(2)
        return
    name = argv[0]
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"matchforge {name}", description=help_)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        module.run(args)
    except MatchforgeError as err:
        logging.getLogger("matchforge").error("%s", err)
        print(f"matchforge {name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as err:
        from matchforge.training.engine import EXIT_INTERRUPTED, TrainingInterrupted

        if not isinstance(err, TrainingInterrupted):
            raise
        print(f"matchforge {name}: interrupted: {err}", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
