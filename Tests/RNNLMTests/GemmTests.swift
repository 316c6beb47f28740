import Testing

@testable import RNNLM

@Suite struct GemmTests {
  /// BLAS against the naive loop for every transpose combination, with alpha, beta and
  /// leading dimensions larger than the rows (padding must be skipped, not read as data).
  @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
  func sgemmMatchesNaive(transposeA: Bool, transposeB: Bool) {
    var g = SeededGenerator(seed: 7)
    let (m, n, k) = (5, 7, 3)
    let lda = (transposeA ? m : k) + 2
    let ldb = (transposeB ? k : n) + 1
    let ldc = n + 3
    let a = randomArray((transposeA ? k : m) * lda, &g).map(Float.init)
    let b = randomArray((transposeB ? n : k) * ldb, &g).map(Float.init)
    let c0 = randomArray(m * ldc, &g).map(Float.init)
    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
      var fast = c0
      var slow = c0
      gemm(
        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
        ldb: ldb, beta: beta, c: &fast, ldc: ldc)
      naiveGemm(
        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
        ldb: ldb, beta: beta, c: &slow, ldc: ldc)
      expectClose(fast, slow, tolerance: 1e-5, "sgemm tA=\(transposeA) tB=\(transposeB) alpha=\(alpha) beta=\(beta)")
      // Padding columns of C beyond n are untouched.
      for i in 0..<m { for j in n..<ldc { #expect(fast[i * ldc + j] == c0[i * ldc + j]) } }
    }
  }

  @Test func dgemmMatchesNaive() {
    var g = SeededGenerator(seed: 8)
    let (m, n, k) = (4, 6, 5)
    let a = randomArray(k * m, &g)
    let b = randomArray(n * k, &g)
    let c0 = randomArray(m * n, &g)
    var fast = c0
    var slow = c0
    gemm(
      transposeA: true, transposeB: true, m: m, n: n, k: k, alpha: 1.5, a: a, lda: m, b: b, ldb: k, beta: -1, c: &fast,
      ldc: n)
    naiveGemm(
      transposeA: true, transposeB: true, m: m, n: n, k: k, alpha: 1.5, a: a, lda: m, b: b, ldb: k, beta: -1, c: &slow,
      ldc: n)
    expectClose(fast, slow, tolerance: 1e-12, "dgemm TT")
  }

  /// beta = 0 must not read C: NaN already in C may not leak into the result.
  @Test func betaZeroIgnoresGarbage() {
    let a: [Float] = [1, 2, 3, 4]
    let b: [Float] = [1, 0, 0, 1]
    var c = [Float](repeating: .nan, count: 4)
    gemm(m: 2, n: 2, k: 2, a: a, lda: 2, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
    #expect(c == [1, 2, 3, 4])
  }

  /// The OpenBLAS kernel note: silent when the kernels match the CPU or are unknown; names the
  /// user's setting when it holds OpenBLAS back; names the fallback and a setting when OpenBLAS
  /// did not recognise the CPU.
  @Test func kernelsNoteDecision() throws {
    #expect(BLASInfo.kernelsNote(coreType: nil, coreName: "Cooperlake", cpuLevel: 2) == nil)
    #expect(BLASInfo.kernelsNote(coreType: nil, coreName: "Zen", cpuLevel: 1) == nil)
    #expect(BLASInfo.kernelsNote(coreType: "Haswell", coreName: "Haswell", cpuLevel: 1) == nil)
    #expect(BLASInfo.kernelsNote(coreType: nil, coreName: "Prescott", cpuLevel: 0) == nil)
    #expect(BLASInfo.kernelsNote(coreType: nil, coreName: "SomethingNew", cpuLevel: 2) == nil)

    let held = try #require(BLASInfo.kernelsNote(coreType: "Haswell", coreName: "Haswell", cpuLevel: 2))
    #expect(held.contains("OPENBLAS_CORETYPE=Haswell holds OpenBLAS"))
    #expect(held.contains("AVX-512"))
    #expect(held.contains("OPENBLAS_CORETYPE=SkylakeX"))

    let fallback = try #require(BLASInfo.kernelsNote(coreType: nil, coreName: "Prescott", cpuLevel: 2))
    #expect(fallback.contains("does not recognise"))
    #expect(fallback.contains("Prescott"))
    #expect(fallback.contains("OPENBLAS_CORETYPE=SkylakeX"))
    let empty = try #require(BLASInfo.kernelsNote(coreType: "", coreName: "Sandybridge", cpuLevel: 1))
    #expect(empty.contains("OPENBLAS_CORETYPE=Haswell"))
    #expect(!empty.contains("SkylakeX"))
  }
}
