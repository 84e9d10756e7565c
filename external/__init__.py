"""The NMS family of the tester: soft-NMS and soft-NMS with box merging (external/nms.py).

external/_cpu_nms.pyx is the compiled path (python setup_cpu_nms.py build_ext --inplace);
external/nms_numpy.py is the numpy fallback used when it is not built.
"""
