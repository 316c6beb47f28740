import CKernels
import COpenBLAS
import Foundation

/// The toolkit's one matrix product: `C = alpha · op(A) · op(B) + beta · C`, row-major.
///
/// - `op(A)` is (m, k): `A` is stored (m, k) with row stride `lda ≥ k`, or, when
///   `transposeA`, stored (k, m) with `lda ≥ m`.
/// - `op(B)` is (k, n): `B` is stored (k, n) with `ldb ≥ n`, or, when `transposeB`,
///   stored (n, k) with `ldb ≥ k`.
/// - `C` is (m, n) with `ldc ≥ n`. With `beta == 0`, `C` is not read (NaNs in it do not leak).
///
/// `beta = 1` is how the layers accumulate (the recurrent term into the input projection,
/// gradients into the gradient buffer) without extra copies.
@inline(__always)
package func gemm<T: BLASScalar>(
  transposeA: Bool = false, transposeB: Bool = false,
  m: Int, n: Int, k: Int,
  alpha: T = 1, a: UnsafePointer<T>, lda: Int,
  b: UnsafePointer<T>, ldb: Int,
  beta: T = 0, c: UnsafeMutablePointer<T>, ldc: Int
) {
  T._gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// A straightforward triple loop with the same contract as ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``,
/// accumulating in `Double`. It is the reference the BLAS path is tested against.
package func naiveGemm<T: BLASScalar>(
  transposeA: Bool = false, transposeB: Bool = false,
  m: Int, n: Int, k: Int,
  alpha: T = 1, a: UnsafePointer<T>, lda: Int,
  b: UnsafePointer<T>, ldb: Int,
  beta: T = 0, c: UnsafeMutablePointer<T>, ldc: Int
) {
  for i in 0..<m {
    for j in 0..<n {
      var sum = 0.0
      for p in 0..<k {
        let aip = transposeA ? a[p * lda + i] : a[i * lda + p]
        let bpj = transposeB ? b[j * ldb + p] : b[p * ldb + j]
        sum += Double(aip) * Double(bpj)
      }
      let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
      c[i * ldc + j] = T(Double(alpha) * sum + prior)
    }
  }
}

/// The toolkit's threads: one team runs the matrix products (each thread calls OpenBLAS,
/// single-threaded, on its block of the result) and the recurrent time loops.
///
/// The default is `OPENBLAS_NUM_THREADS`, else `OMP_NUM_THREADS`, else the number of online
/// processors. The first matrix product sets OpenBLAS itself to one thread for the whole process
/// (its own pool would compete with the team for the same cores).
public enum ComputeThreads {
  /// The number of threads the toolkit's kernels use.
  public static var count: Int { Int(rl_threads()) }

  /// Sets the number of threads (clamped to 1...64).
  public static func set(_ n: Int) { rl_set_threads(Int32(clamping: n)) }
}

/// Facts about the kernels in use.
package enum KernelInfo {
  /// The float kernels' variant on this CPU: "AVX-512", "AVX2+FMA" or "portable C".
  package static var variant: String {
    switch rl_kernels_level() {
    case 2: "AVX-512"
    case 1: "AVX2+FMA"
    default: "portable C"
    }
  }
}

/// Facts about the OpenBLAS library in use.
package enum BLASInfo {
  /// The kernel set OpenBLAS chose for this CPU (e.g. "Haswell", "SkylakeX"); a library built
  /// for several CPUs picks it when it loads, and `OPENBLAS_CORETYPE` overrides the choice.
  package static var coreName: String {
    guard let name = openblas_get_corename() else { return "unknown" }
    return String(cString: name)
  }

  /// OpenBLAS's kernel sets that use AVX-512 (the toolkit's kernel level 2).
  static let avx512Cores: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]
  /// OpenBLAS's kernel sets that use AVX2 and FMA (level 1).
  static let avx2Cores: Set<String> = ["Haswell", "Zen", "Excavator"]
  /// OpenBLAS's kernel sets older than AVX2+FMA (level 0): what it falls back to on a CPU it
  /// does not recognise.
  static let olderCores: Set<String> = [
    "Prescott", "Katmai", "Coppermine", "Northwood", "Banias", "Atom", "Core2", "Penryn", "Dunnington",
    "Nehalem", "Sandybridge", "Opteron", "Opteron_SSE3", "Barcelona", "Bobcat", "Bulldozer", "Piledriver",
    "Steamroller",
  ]

  /// A note for the user when OpenBLAS runs kernels narrower than this CPU runs, or nil. The
  /// toolkit never changes `OPENBLAS_CORETYPE` (OpenBLAS reads it once, when it loads).
  package static var narrowerKernelsNote: String? {
    kernelsNote(
      coreType: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], coreName: coreName,
      cpuLevel: Int(rl_kernels_level()))
  }

  /// The decision behind ``narrowerKernelsNote``, given its inputs.
  ///
  /// - Parameters:
  ///   - coreType: `OPENBLAS_CORETYPE` as the user set it (nil or empty: unset).
  ///   - coreName: the kernel set OpenBLAS runs (`openblas_get_corename`).
  ///   - cpuLevel: what this CPU runs: 2 AVX-512, 1 AVX2+FMA, 0 neither.
  /// - Returns: a note when the kernel set is narrower than the CPU: the user's setting holds
  ///   OpenBLAS back, or OpenBLAS did not recognise the CPU and fell back to old kernels.
  ///   Nil when the kernel set is unknown to this table or matches the CPU.
  package static func kernelsNote(coreType: String?, coreName: String, cpuLevel: Int) -> String? {
    let coreLevel: Int
    if avx512Cores.contains(coreName) {
      coreLevel = 2
    } else if avx2Cores.contains(coreName) {
      coreLevel = 1
    } else if olderCores.contains(coreName) {
      coreLevel = 0
    } else {
      return nil
    }
    guard cpuLevel > coreLevel else { return nil }
    let cpu = cpuLevel >= 2 ? "AVX-512" : "AVX2"
    if let forced = coreType, !forced.isEmpty {
      return "note: OPENBLAS_CORETYPE=\(forced) holds OpenBLAS to its \(coreName) kernels on this \(cpu) CPU; "
        + "its own choice ran large products up to 1.9× faster on a machine measured for this project "
        + "(Benchmarks/README.md). Unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE to let OpenBLAS choose"
        + (cpuLevel >= 2 ? " (or, where OpenBLAS does not recognise the CPU, set OPENBLAS_CORETYPE=SkylakeX)" : "")
        + "; the toolkit keeps your setting."
    }
    let suggestion = cpuLevel >= 2 ? "OPENBLAS_CORETYPE=SkylakeX (or Haswell)" : "OPENBLAS_CORETYPE=Haswell"
    return "note: OpenBLAS does not recognise this \(cpu) CPU and fell back to its \(coreName) kernels; "
      + "on such a machine they ran `medium` training 2.8× slower than its Haswell kernels "
      + "(docs/performance.md). Set \(suggestion) before running to use this CPU's vector units; "
      + "the toolkit does not change the setting itself."
  }
}
