"""Image I/O, resizing (MATLAB-exact bicubic) and benchmark datasets."""
