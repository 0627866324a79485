"""What numba compiles for the native kernels, apart from the host code that calls it.

Everything here is cached on disk by `cache.jit`, whose stamp covers every file of this
package (and the modules whose globals the kernels freeze): editing any of them recompiles
every kernel.
"""
