"""The compiler: a tinybnn model to integers to C.

- `contract`: the arithmetic every stage shares (bits, packing, integer thresholds);
- `program`, `lowering`: the integer program and the walk that lowers a model to it;
- `reference`: the numpy interpreter of the program, the specification;
- `targets`, `variants`, `kernels`: cores, kernel variants and the limits the C header sets;
- `codegen`: arena and flash planning, and rendering through the templates;
- `summary`: per-layer costs, read from the lowered program;
- `api`: `tinybnn.compile`.

What is particular to one layer kind lives in its op module (`tinybnn.ops`).
"""
