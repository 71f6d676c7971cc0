"""How feature maps may be coded on the DRAM link: a hardware choice (`dram.fmap_compression`).

"rlc" is Eyeriss's run-length code (Chen et al., JSSC 2017, Sec. IV-B), with the run and word widths of
`dram.rlc_run_bits` and `dram.rlc_word_bits`; what it costs per value is dfs_sim/cost/compression.py's."""
COMPRESSIONS = ("none", "rlc")
