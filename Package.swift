// swift-tools-version: 6.0
import PackageDescription

let package = Package(
  name: "RNNLM",
  products: [
    .library(name: "RNNLM", targets: ["RNNLM"]),
    .executable(name: "train-ptb", targets: ["train-ptb"]),
    .executable(name: "train-classifier", targets: ["train-classifier"]),
    .executable(name: "train-seq2seq", targets: ["train-seq2seq"]),
    .executable(name: "rnnlm", targets: ["rnnlm"]),
    .executable(name: "ppl-bench", targets: ["ppl-bench"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    // `swift package generate-documentation --target RNNLM` renders the public API's docs.
    .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
  ],
  targets: [
    // MARK: - C

    /// OpenBLAS's CBLAS interface. pkg-config supplies the Debian include path
    /// (`/usr/include/x86_64-linux-gnu/openblas-pthread`).
    .systemLibrary(
      name: "COpenBLAS",
      pkgConfig: "openblas",
      providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]
    ),
    /// The kernels in C: the thread team, the matrix product over it (OpenBLAS inside), the LSTM
    /// time loops with their small products, and the elementwise kernels (gates, softmax with
    /// cross-entropy, dropout); AVX-512 and AVX2/FMA variants are chosen at run time, without
    /// compiler flags.
    .target(name: "CKernels", dependencies: ["COpenBLAS"]),
    /// Open MPI's C interface. pkg-config (`ompi-c`) supplies Debian's include and library paths.
    .systemLibrary(
      name: "COpenMPI",
      pkgConfig: "ompi-c",
      providers: [.apt(["libopenmpi-dev"]), .brew(["open-mpi"])]
    ),
    /// The MPI operations data-parallel training uses (sums, broadcasts, gathers) and the
    /// handler that ends a rank when mpirun ends the job, as plain C functions Swift can call.
    .target(name: "CCollectives", dependencies: ["COpenMPI"]),

    // MARK: - Swift

    .target(name: "RNNLM", dependencies: ["COpenBLAS", "CKernels", "CCollectives"]),
    /// Flags and run set-up shared by the executables (not a product).
    .target(
      name: "RNNLMCommandLine",
      dependencies: ["RNNLM", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .executableTarget(
      name: "train-ptb",
      dependencies: ["RNNLMCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .executableTarget(
      name: "train-classifier",
      dependencies: ["RNNLMCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .executableTarget(
      name: "train-seq2seq",
      dependencies: ["RNNLMCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .executableTarget(
      name: "rnnlm",
      dependencies: ["RNNLM", "RNNLMCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),

    // MARK: - Benchmarks

    .executableTarget(
      name: "ppl-bench",
      dependencies: [
        "RNNLM", "RNNLMCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      path: "Benchmarks/PerplexityBenchmark"
    ),
    .executableTarget(
      name: "throughput-bench",
      dependencies: [
        "RNNLM", "RNNLMCommandLine", "AllocationCounter", "COpenBLAS",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      path: "Benchmarks/Throughput"
    ),
    /// Counts heap allocations (interposes malloc and friends); linked into throughput-bench only.
    .target(name: "AllocationCounter", path: "Benchmarks/AllocationCounter"),

    // MARK: - Tests

    .testTarget(name: "RNNLMTests", dependencies: ["RNNLM", "RNNLMCommandLine"]),
  ]
)
