"""tvm-fused: line-buffered conv-chain fusion for int8 CNNs on Cortex-M7, on Apache TVM."""
from setuptools import find_packages, setup

setup(
    name="tvm-fused",
    version="0.1.0",
    description="Compile int8 CNNs to plain C for Cortex-M7 with line-buffered conv-chain fusion",
    packages=find_packages(include=["tvm_fused", "tvm_fused.*"]),
    python_requires=">=3.10",
    install_requires=[
        "apache-tvm==0.27.0.post1",
        "numpy",
        "onnx",
        "onnxruntime",
        "tflite",
        "ai-edge-litert",
        "xgboost",
        "pyelftools",
        "pyserial",
        "matplotlib",
        # TVM's RPC tracker and server (tvm-fused tune --tracker, rpc-server) need these three
        "tornado",
        "cloudpickle",
        "psutil",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "hypothesis"]},
    entry_points={"console_scripts": ["tvm-fused=tvm_fused.cli:main"]},
    # Data files ship inside the package and are found with importlib.resources (no source tree needed):
    # the firmware template (Makefile, linker scripts, C sources of the RPC server, one folder per board).
    package_data={"tvm_fused": ["py.typed"],
                  "tvm_fused.micro": ["template/Makefile", "template/README.md", "template/ld/*.ld",
                                      "template/src/*.c", "template/src/*.h", "template/boards/*/*"]},
)
