import CKernels
import COpenBLAS

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

/// OpenBLAS's thread count: the number of threads each matrix product may use.
public enum BLASThreads {
  /// The number of threads OpenBLAS currently uses.
  public static var count: Int { Int(openblas_get_num_threads()) }

  /// Sets OpenBLAS's thread count (clamped to at least 1).
  public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}

/// Facts about the elementwise kernels in use.
package enum KernelInfo {
  /// Whether the float kernels run their AVX2+FMA variants on this CPU.
  package static var usesAVX2: Bool { rl_kernels_use_avx2() != 0 }
}
