"""Training: the loop (`train`), data sets (`data`, `tsfile`), augmentation, distillation,
Bop and the full-precision twin."""
