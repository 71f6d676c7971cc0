"""Upper bounds on what the loaders accept, and what limits each (docs/robustness.md, "Bounds").

They are generous: far above any real network, trace or accelerator. Together they keep every
integer the cost code forms below 2**63, so its int64 arithmetic cannot wrap: a layer's MACs
(<= 2**40) times the batch (<= 2**12) times two operand widths (<= 2**5 each) is below 2**62,
and so is a feature map's size in bits times the batch. Sums over layers, inputs and tiles are
float64 (exact up to 2**53, then rounded, never wrapping), and every report number must be
finite or the run is refused.
"""
from __future__ import annotations

# Operand widths: weights and activations, and the widest partial sum. DFS's full precision is the widest
# operand: its declared width, and the denominator of the paper's (b/32)^2 computation cost.
MAX_BITS = 32
FULL_PRECISION_BITS = MAX_BITS
MAX_OUTPUT_BITS = 64
# Batch size: the cost table holds every group size 1..B (layers x cases x B x metrics float64;
# DFS-ResNet74 at 4096 takes about 4 GB and a minute).
MAX_BATCH = 4096
# Inputs in one trace: option indices and labels are int32 (the per-input report holds about
# 100 bytes per input, so memory runs out well before this).
MAX_INPUTS = 2**31 - 1
MAX_LABEL = 2**31 - 1  # labels and predictions are int32 class indices
# Network tables.
MAX_UNITS = 4096  # gated units: columns of `decisions`
MAX_OPTIONS = 255  # decisions are uint8, and one more case is the full-precision reference
MAX_LAYERS = 10_000
MAX_CHANNELS = 2**20  # c_in, c_out, input channels
MAX_SPATIAL = 2**16  # h_in, w_in, h_out, w_out, kernel, stride, padding (pixels)
MAX_LAYER_MACS = 2**40  # per input; x batch x bits x bits < 2**63
MAX_FMAP_ELEMENTS = 2**40  # a layer's padded input or output, per input
MAX_NAME_CHARS = 256  # network, layer, unit and option names (labels in reports)
MAX_BUDGET_COST = 1_000_000  # a real-cost budget's table cell: an option's cost in a block over the mean full-precision block's
# Documents.
MAX_TEXT_BYTES = 16 << 20  # a YAML or JSON file (hardware, network, baseline, manifest)
MAX_HEADER_BYTES = 64 << 20  # a trace's JSON header (a 10,000-layer network is about 3 MB)
MAX_DEPTH = 32  # nesting of mappings and lists in any document (the schemas need 5)
MAX_INT_DIGITS = 19  # integers in documents: |x| < 2**63; anything larger is refused, not rounded
MAX_NPY_HEADER_BYTES = 10_000  # numpy's own default limit for a .npy member's header
MAX_COMPRESSED_MEMBER_BYTES = 256 << 20  # a deflated trace member is read into memory; store larger ones
