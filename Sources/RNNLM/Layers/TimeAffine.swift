/// The output layer: scores = X·Wᵀ + b for every row of a time-major batch.
///
/// W is (V, H), PyTorch's `nn.Linear` layout. With weight tying it is the embedding matrix
/// itself (same pointer, no transposed copy), and its gradient adds into the embedding's.
package final class TimeAffine<T: BLASScalar> {
  /// Input size H.
  package let inputSize: Int
  /// Output size V.
  package let outputSize: Int
  /// Largest number of rows.
  package let maxRows: Int
  /// weight: (V, H); bias: (V). Views into the parameter buffer.
  let weight: UnsafeMutablePointer<T>, bias: UnsafeMutablePointer<T>
  /// Their gradients.
  let dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>
  /// output: (rows, V) scores. ``TimeSoftmaxWithLoss`` replaces them by their gradient in place.
  package let output: Buffer<T>
  /// dInput: (rows, H), written by ``backward(dOutput:)``.
  package let dInput: Buffer<T>
  private var input: UnsafePointer<T>?
  private var rows = 0

  /// A layer over the given views, for up to `maxRows` rows.
  package init(
    inputSize: Int, outputSize: Int, maxRows: Int,
    weight: UnsafeMutablePointer<T>, bias: UnsafeMutablePointer<T>,
    dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
    scratch: ScratchPool<T> = ScratchPool(), scratchName: String = "affine"
  ) throws {
    self.inputSize = inputSize
    self.outputSize = outputSize
    self.maxRows = maxRows
    self.weight = weight
    self.bias = bias
    self.dWeight = dWeight
    self.dBias = dBias
    output = try scratch.buffer("\(scratchName).output", count: maxRows * outputSize)
    dInput = try scratch.buffer("\(scratchName).dInput", count: maxRows * inputSize)
  }

  /// output = input·Wᵀ + b; `input` is (rows, H) and must stay unchanged until backward.
  package func forward(input: UnsafePointer<T>, rows: Int) {
    precondition(rows <= maxRows, "batch of \(rows) rows exceeds the \(maxRows) allocated")
    self.input = input
    self.rows = rows
    let v = outputSize
    for r in 0..<rows { (output.pointer + r * v).update(from: bias, count: v) }
    gemm(
      transposeB: true, m: rows, n: v, k: inputSize,
      a: input, lda: inputSize, b: weight, ldb: inputSize, beta: 1, c: output.pointer, ldc: v)
  }

  /// dW += dOutputᵀ·input, db += column sums of dOutput, dInput = dOutput·W.
  /// - Parameter dOutput: (rows, V); may be ``output`` itself.
  package func backward(dOutput: UnsafePointer<T>) {
    guard let input else { preconditionFailure("backward before forward") }
    let v = outputSize
    let h = inputSize
    gemm(
      transposeA: true, m: v, n: h, k: rows,
      a: dOutput, lda: v, b: input, ldb: h, beta: 1, c: dWeight, ldc: h)
    T._addColumnSums(rows, v, dOutput, dBias)
    gemm(m: rows, n: h, k: v, a: dOutput, lda: v, b: weight, ldb: h, c: dInput.pointer, ldc: h)
  }
}
