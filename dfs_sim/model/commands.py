"""The `train`, `trace` and `network` subcommands. Nothing here imports torch until a handler runs."""
from __future__ import annotations

import argparse
import shlex

from dfs_sim.errors import InputError

_STAGES = ("backbone", "gates", "dfs")
_DATASETS = ("fashion-mnist", "cifar10", "cifar100")


def register(subparsers) -> None:
    """Add `train`, `trace` and `network` to an argparse subparsers object."""
    train = subparsers.add_parser("train", help="train one stage of a DFS model (resumable)",
                                  description="Train one DFS stage: backbone -> gates -> dfs. Rerunning a "
                                              "command resumes from its checkpoint (-o).")
    train.add_argument("--stage", required=True, choices=_STAGES,
                       help="backbone (the ResNet at full precision), gates (gates learn on the frozen backbone), "
                            "dfs (joint training at a budget)")
    train.add_argument("-o", "--out", required=True, help="checkpoint to write (and resume from); log: same name .csv")
    train.add_argument("--dataset", choices=_DATASETS, help="default: the previous stage's, fashion-mnist for a "
                                                             "new backbone")
    train.add_argument("--data", help="dataset directory (IDX files, CIFAR binary batches) or .npz; default: the "
                                      "previous stage's, Fashion-MNIST: /usr/share/datasets/fashion-mnist")
    train.add_argument("--init", help="finished checkpoint of the previous stage (gates, dfs)")
    train.add_argument("--arch", default="resnet20", help="resnet20, resnet38, resnet74 or depths like 3,3,3 "
                                                         "(backbone stage)")
    train.add_argument("--options", help="gate options, e.g. skip,8,16,full (the default), skip,8,10,12,14,16,full "
                                         "or skip,2,4,8 (backbone stage, or gates stage with fresh gates)")
    train.add_argument("--gate-init", choices=("reference", "pytorch"),
                       help="gate weights: the reference's normal(0, sqrt(2/n)) (default) or PyTorch's defaults "
                            "(backbone or gates stage)")
    train.add_argument("--act-range", choices=("reference", "batch"),
                       help="activation-range statistic: mean of per-sample min/max, EMA 0.9 new, updated when "
                            "quantizing (reference, default) or batch min/max, EMA 0.1 new (backbone stage)")
    train.add_argument("--fixed-bits", type=int,
                       help="the layers no gate decides (stem, block 1, classifier, a skipped block's projection) run "
                            "at this many bits instead of full precision (backbone stage, or gates stage with fresh "
                            "gates), e.g. 8 for a low-bit network")
    train.add_argument("--projection", choices=("quantized", "full"),
                       help="downsampling projection at the block's bits (default) or always full precision "
                            "(backbone stage)")
    train.add_argument("--nested", action=argparse.BooleanOptionalAction, default=None,
                       help="b-bit codes are the top b bits of the widest code")
    train.add_argument("--bn", choices=("shared", "per-option"), help="BN per conv shared by all bitwidths "
                                                                      "(default) or one per option")
    train.add_argument("--epochs", type=int, default=1, help="passes over the training split")
    train.add_argument("--batch-size", type=int, default=128, help="training images per step")
    train.add_argument("--lr", type=float, default=0.1, help="initial learning rate (SGD)")
    train.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay")
    train.add_argument("--schedule", choices=("cosine", "step"),
                       help="learning-rate schedule (default: cosine for backbone and gates, step for dfs)")
    train.add_argument("--lr-steps", default="0.5,0.75", help="step schedule: fractions of training at which the "
                                                             "rate drops 10x")
    train.add_argument("--budget", type=float, help="target percentage of the --cost metric (dfs stage)")
    train.add_argument("--cost", default="proxy", help="what the budget counts (dfs stage): proxy, the paper's "
                                                       "(b/32)^2, or METRIC@HW from dfs-sim's cost tables, e.g. "
                                                       "energy@bitfusion, cycles@stripes, dram@loom")
    train.add_argument("--beta", type=float, default=0.1, help="weight of the cost term (dfs stage)")
    train.add_argument("--static", help="dfs stage: train a static reference instead, its options pinned: one "
                                        "option (4bit) or one per gated block (8,8,4,4,2,2,8,8); no budget")
    train.add_argument("--controller-gain", type=float, default=0.5,
                       help="dfs stage: online budget controller; the gates' decision bias follows lam, which "
                            "integrates each batch's cost error (lam += gain * (cost - budget)); 0 turns it off "
                            "and leaves the budget to the sign rule alone, as the reference")
    train.add_argument("--freeze-gates", action="store_true",
                       help="dfs stage: the gates keep the weights stage 2 gave them and only the backbone trains, "
                            "under the decisions the budget controller sets (keeps loss-target gates' per-input "
                            "ranking, which the sign rule flattens)")
    train.add_argument("--explore", type=float, default=0.0,
                       help="dfs stage: share of (input, block) pairs that run an option drawn at random instead "
                            "of the gate's, so that options the gates do not choose yet still train (their "
                            "quantized paths, their batch norms); the gates' decisions and the budget are "
                            "unchanged")
    train.add_argument("--tolerance", type=float, default=2.0,
                       help="dfs stage: epochs within this many points of the budget on the validation split "
                            "compete on validation accuracy")
    train.add_argument("--val-size", type=int, help="validation images carved from the training split "
                                                    "(backbone stage; later stages keep it; default 5000)")
    train.add_argument("--calibration-batches", type=int, default=20,
                       help="gates stage: training batches that set never-calibrated activation ranges")
    train.add_argument("--gate-margin", type=float, default=1.0,
                       help="gates stage: the logit lead of the top option at which the hinge loss stops")
    train.add_argument("--gate-target", default="top", choices=("top", "ranked", "loss", "prob", "kl"),
                       help="gates stage: top trains the top option to lead every other by --gate-margin; ranked "
                            "also orders the rest, each option leading the next cheaper one by the margin, so "
                            "that a budget moves a block down one option at a time; loss trains each option's "
                            "logit toward minus the loss that option adds in its block for this input (one "
                            "forward per block and option), and may refit the gates of a finished dfs checkpoint; prob "
                            "likewise, with the drop in the true class's probability; kl with how far the option "
                            "moves the prediction, KL(top path || this path), which needs no label. dfs stage "
                            "(loss, prob, kl): the gates keep fitting that target, recomputed each step on the "
                            "network as it fine-tunes, and learn nothing else; the backbone learns the task")
    train.add_argument("--loss-clip", type=float, default=4.0,
                       help="per-input gate targets (loss, prob, kl): clip the target to this many nats")
    train.add_argument("--target-scale", type=float, default=1.0,
                       help="per-input gate targets: multiply the harm by this before the fit. KL "
                            "is hundredths of a nat on most inputs; a larger scale gives its per-input "
                            "variation gradients that weight decay does not drown (stage 3's budget controller "
                            "rescales the cost to match)")
    train.add_argument("--target-shape", choices=("linear", "log1p"), default="linear",
                       help="per-input gate targets (loss, kl): regress on the scaled harm (linear) or on "
                            "log(1 + scaled harm) (log1p), equal below 1/--target-scale and compressed above, so "
                            "that the few inputs a block harms 100x more than the median do not drag the fit")
    train.add_argument("--target-inputs", type=int, default=32,
                       help="dfs stage, per-input gate target: inputs of each batch whose target is computed "
                            "(each costs a pass per block and option)")
    train.add_argument("--gate-lr", type=float,
                       help="dfs stage, per-input gate target: the gates' learning rate (default: --lr)")
    train.add_argument("--max-batches", type=int, help="batches per epoch (default: the whole training split)")
    train.add_argument("--eval-limit", type=int, help="evaluate on the first N validation and test inputs only")
    train.add_argument("--seed", type=int, default=0, help="random seed (initialisation, data order)")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda")
    train.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    train.set_defaults(handler=run_train, model_parser=train)

    trace = subparsers.add_parser("trace", help="emit a v1 trace from a trained DFS checkpoint",
                                  description="Run a checkpoint over a dataset split (only the chosen option "
                                              "per input and block) and write a trace.")
    trace.add_argument("--checkpoint", required=True, help="a finished checkpoint of `dfs-sim train`")
    trace.add_argument("--data", help="dataset directory or .npz (default: the checkpoint's)")
    trace.add_argument("--dataset", help="default: the dataset the checkpoint was trained on")
    trace.add_argument("--split", default="test", choices=("train", "test"), help="dataset split to run")
    trace.add_argument("-o", "--out", required=True, help="trace file (.npz)")
    trace.add_argument("--force", help="static reference: pin every gated block to this option (e.g. full, 8bit), "
                                       "or one option per gated block (8,8,4,4,2,2,8,8)")
    trace.add_argument("--nested", action=argparse.BooleanOptionalAction, default=None,
                       help="override the checkpoint's quantization mode")
    trace.add_argument("--no-gate-probs", dest="gate_probs", action="store_false",
                       help="do not store the gates' option probabilities (smaller trace)")
    trace.add_argument("--limit", type=int, help="first N inputs only")
    trace.add_argument("--batch-size", type=int, default=500, help="images per forward pass")
    trace.add_argument("--seed", type=int, default=0, help="random seed")
    trace.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    trace.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda")
    trace.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    trace.set_defaults(handler=run_trace, model_parser=trace)

    network = subparsers.add_parser(
        "network", help="write the layer table of a static PyTorch model as a network file (needs dfs-sim[model])",
        description="Build a PyTorch model, derive its layer table with the recorder (docs/recorder.md) and write "
                    "it as a network file for `dfs-sim run --network` (docs/networks.md). Layers the cost model "
                    "cannot cost are refused, never dropped.")
    network.add_argument("--from-torch", required=True, metavar="MODULE:FACTORY",
                         help="a module (package.module or path/to/file.py) and a callable in it that returns the "
                              "model (or the model object itself), e.g. torchvision.models:resnet18")
    network.add_argument("--input-shape", required=True, metavar="C,H,W", help="one input, e.g. 3,224,224")
    network.add_argument("--bits", metavar="W/A", help="every layer at fixed W-bit weights and A-bit activations "
                                                       "(default: full precision)")
    network.add_argument("--name", help="network name (default: the factory's name)")
    network.add_argument("-o", "--output", help="network file, .yaml or .json (default: YAML on stdout)")
    network.set_defaults(handler=run_network)


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        raise InputError("torch", None, "the model commands need PyTorch: pip install 'dfs-sim[model]'") from None


def _command(args: argparse.Namespace, name: str) -> str:
    """The command line that reproduces `args` (options left at their defaults are omitted),
    rebuilt from the parsed options so it is right however the parser was invoked."""
    parts = ["dfs-sim", name]
    for action in args.model_parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest == "help" or value == action.default:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            parts.append(f"--{'' if value else 'no-'}{action.dest.replace('_', '-')}")
        elif action.nargs == 0:  # store_true / store_false
            parts.append(action.option_strings[-1])
        else:
            parts += [max(action.option_strings, key=len), str(value)]
    return shlex.join(parts)


def run_train(args: argparse.Namespace) -> int:
    _require_torch()
    from dfs_sim.model.train import StageArgs, run_stage

    fields = {k: v for k, v in vars(args).items() if k in StageArgs.__dataclass_fields__ and k != "command"}
    run_stage(StageArgs(**fields, command=_command(args, "train")))
    return 0


def run_trace(args: argparse.Namespace) -> int:
    _require_torch()
    from dfs_sim.model.emit import emit_trace

    path, summary = emit_trace(checkpoint=args.checkpoint, out=args.out, data=args.data, dataset=args.dataset,
                               split=args.split, force=args.force, nested=args.nested, gate_probs=args.gate_probs,
                               limit=args.limit, batch_size=args.batch_size, seed=args.seed, threads=args.threads,
                               device=args.device, progress=args.progress, command=_command(args, "trace"))
    print(f"{path}: {summary['n']} inputs, accuracy {summary['accuracy_pct']:.2f}%, "
          f"computation {summary['computation_pct']:.2f}%")
    return 0


def _input_shape(text: str) -> tuple[int, int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InputError("--input-shape", None, f"'{text}' is not C,H,W of positive integers, e.g. 3,32,32")
    return tuple(int(p) for p in parts)


def _load_factory(spec: str):
    """The object named by 'module:attribute' or 'path/to/file.py:attribute'."""
    import importlib
    import importlib.util
    import sys
    from pathlib import Path

    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise InputError("--from-torch", None, f"'{spec}' is not MODULE:FACTORY, e.g. mymodels:small_cnn")
    try:
        if module_name.endswith(".py") or Path(module_name).is_file():
            path = Path(module_name)
            if not path.is_file():
                raise InputError(path, None, "no such file")
            loader = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            sys.path.insert(0, str(Path.cwd()))
            try:
                module = importlib.import_module(module_name)
            finally:
                sys.path.pop(0)
    except ImportError as err:
        raise InputError("--from-torch", None, f"cannot import '{module_name}' ({err})") from None
    if not hasattr(module, attribute):
        raise InputError("--from-torch", None, f"'{module_name}' has no attribute '{attribute}'")
    return getattr(module, attribute)


def run_network(args: argparse.Namespace) -> int:
    from dfs_sim.output import write_output
    from dfs_sim.reference import parse_reference
    from dfs_sim.workload.files import network_text

    shape = _input_shape(args.input_shape)
    bits = parse_reference(args.bits, "--bits") if args.bits else None
    if bits is not None and bits.weight_bits is None:
        raise InputError("--bits", None, f"'{args.bits}' is not W/A bits, e.g. 8/8")
    suffix = (args.output or "").rsplit(".", 1)[-1].lower() if args.output and "." in args.output else "yaml"
    if suffix not in ("yaml", "yml", "json"):
        raise InputError(args.output, None, "a network file is .yaml, .yml or .json")
    try:
        import torch
        from torch import nn
    except ImportError:
        raise InputError("--from-torch", None, "needs PyTorch: pip install 'dfs-sim[model]'") from None
    from dfs_sim.model.recorder import Recorder

    factory = _load_factory(args.from_torch)
    model = factory if isinstance(factory, nn.Module) else factory() if callable(factory) else None
    if not isinstance(model, nn.Module):
        raise InputError("--from-torch", None, f"'{args.from_torch}' did not give a torch.nn.Module")
    name = args.name or args.from_torch.rpartition(":")[2]
    recorder = Recorder(model, shape, name=name, description=f"derived from {args.from_torch} with input {shape}")
    if bits is not None:
        recorder.fixed(model, w_bits=bits.weight_bits, a_bits=bits.act_bits)
    with torch.no_grad():
        network = recorder.network()
    header = (f"dfs-sim network --from-torch {args.from_torch} --input-shape {args.input_shape}"
              + (f" --bits {args.bits}" if args.bits else "") + "\nh_out, w_out, macs and weights follow from the "
              "shapes (docs/networks.md). Left out by the recorder (fused into the layers before them): "
              + (", ".join(f"{k} x{v}" for k, v in sorted(recorder.fused.items())) or "nothing"))
    write_output(network_text(network, "json" if suffix == "json" else "yaml", header), args.output)
    return 0
