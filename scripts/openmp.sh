# Sourced by main.sh and grade.sh: how idle OpenMP threads wait between
# PyTorch's CPU operators. They spin 10,000 times, then sleep. Against
# sleeping at once (OMP_WAIT_POLICY=PASSIVE) that trained 1.20-1.28x faster
# alone and 1.07-1.09x beside a niced job, 0.76-0.88x beside another 2-thread
# PyTorch job; the runtime's own 300,000 spins: 1.16-1.45x, but 0.44-0.76x
# beside the PyTorch job (BENCHMARKS.md, thread-wait). Set either variable to
# choose otherwise.
if [ -z "${OMP_WAIT_POLICY:-}" ]; then
    export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
fi
