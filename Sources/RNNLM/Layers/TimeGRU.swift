/// A GRU layer over a whole (T, N) time-major batch: PyTorch's `nn.GRU`, gate order r, z, n.
///
///     r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
///     n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))      h' = (1 − z) ⊙ n + z ⊙ h
///
/// Forward: the input projection `A = X·W_ihᵀ + b_ih + [b_hr, b_hz, 0]` for all N·T rows is ONE
/// product before the time loop (b_hr and b_hz fold into it; b_hn cannot, r multiplies it); each
/// step then does one recurrent product and one fused elementwise kernel, in C on the thread team
/// (`gru.inc`, where the backward formulas are written out). Backward: the loop leaves dA and
/// dU_n = dA_n ⊙ r; after it `dW_ih`, `dX` (from dA) and `dW_hh` (from [dA_r, dA_z, dU_n]) are
/// batched products over all N·T rows.
///
/// Stateful for truncated BPTT: the last h of one forward pass is the first of the next.
package final class TimeGRU<T: BLASScalar>: RecurrentLayer {
  /// Input size (D for the first layer, H above it).
  package let inputSize: Int
  /// Hidden size H.
  package let hiddenSize: Int
  /// Batch size N.
  package let batchSize: Int
  /// Largest number of time steps T a forward pass may have.
  package let maxSteps: Int

  /// W_ih: (3H, inputSize), W_hh: (3H, H), b_ih: (3H), b_hh: (3H), and their gradients.
  let weights: RecurrentWeights<T>

  /// gates: (T·N, 3H): A, then the activations r, z, n, then their gradients dA (in place).
  let gates: Buffer<T>
  /// un: (T·N, H): U_n = h_{t-1}·W_hnᵀ + b_hn, kept for backward, then its gradient.
  let un: Buffer<T>
  /// hs: ((T+1)·N, H): slot 0 is h_{-1}, slot t+1 is h_t; slots 1...T are the output.
  let hs: Buffer<T>
  /// projectionBias: (3H): b_ih + [b_hr, b_hz, 0], rebuilt at every forward pass.
  let projectionBias: Buffer<T>
  /// biasGradient: (3H): Σ_rows dA, shared by b_ih and the r, z parts of b_hh.
  let biasGradient: Buffer<T>
  /// dInput: (T·N, inputSize).
  package let dInput: Buffer<T>
  /// dh: (N, H): the gradient carried from step t to t-1 in backward.
  let dh: Buffer<T>
  /// hState: (N, H): the state carried to the next forward pass.
  let hState: Buffer<T>

  /// The input of the last forward pass, (steps·N, inputSize), which backward reads; nil after
  /// ``forward(steps:projectedBy:)``.
  package var input: UnsafePointer<T>?
  private var steps = 0
  /// Times the layer's parts when set (benchmark breakdown).
  package var profiler: Profiler?

  /// A layer over the given views (b_hh required), with buffers for (N, maxSteps) from `scratch`.
  package init(
    inputSize: Int, hiddenSize: Int, batchSize: Int, maxSteps: Int, weights: RecurrentWeights<T>,
    scratch: ScratchPool<T> = ScratchPool(), scratchName: String = "gru"
  ) throws {
    precondition(weights.recurrentBias != nil && weights.dRecurrentBias != nil, "a GRU needs its recurrent bias")
    self.inputSize = inputSize
    self.hiddenSize = hiddenSize
    self.batchSize = batchSize
    self.maxSteps = maxSteps
    self.weights = weights
    let rows = batchSize * maxSteps
    func buffer(_ part: String, _ count: Int) throws -> Buffer<T> {
      try scratch.buffer("\(scratchName).\(part)", count: count)
    }
    gates = try buffer("gates", rows * 3 * hiddenSize)
    un = try buffer("un", rows * hiddenSize)
    hs = try buffer("hs", (rows + batchSize) * hiddenSize)
    dInput = try buffer("dInput", rows * inputSize)
    dh = try buffer("dh", batchSize * hiddenSize)
    projectionBias = try Buffer(count: 3 * hiddenSize)
    biasGradient = try Buffer(count: 3 * hiddenSize)
    hState = try Buffer(count: batchSize * hiddenSize)
  }

  /// h_0 ... h_{T-1} of the last forward pass: (T·N, H).
  package var output: UnsafePointer<T> { UnsafePointer(hs.pointer + batchSize * hiddenSize) }

  /// Forgets the carried state: the next forward pass starts from h = 0.
  package func resetState() { hState.zero() }

  /// The carried state [h], (N, H) row-major.
  package var state: [[T]] { [hState.array] }

  /// Replaces the carried state [h], (N, H) row-major.
  package func setState(_ state: [[T]]) {
    precondition(state.count == 1 && state[0].count == hState.count, "GRU state must be 1 × (N, H)")
    hState.pointer.update(from: state[0], count: hState.count)
  }

  /// 3H.
  package var projectionWidth: Int { 3 * hiddenSize }

  /// X·W_ihᵀ + b_ih + [b_hr, b_hz, 0] for `rows` rows of `input` (rows, inputSize) into `output`
  /// (rows, 3H).
  package func projectInput(_ input: UnsafePointer<T>, rows: Int, into output: UnsafeMutablePointer<T>) {
    let h = hiddenSize
    projectionBias.pointer.update(from: weights.bias, count: 3 * h)
    T._axpy(2 * h, 1, weights.recurrentBias!, projectionBias.pointer)
    RNNLM.projectInput(
      input, rows: rows, inputSize: inputSize, wIH: weights.wIH, bias: projectionBias.pointer, width: 3 * h,
      into: output)
  }

  /// Runs `steps` steps from the input projections `project` writes into ``gates``.
  package func forward(steps: Int, projectedBy project: (UnsafeMutablePointer<T>) -> Void) {
    precondition(steps >= 1 && steps <= maxSteps, "steps \(steps) outside 1...\(maxSteps)")
    self.input = nil
    self.steps = steps
    let (n, h) = (batchSize, hiddenSize)
    let bHH = weights.recurrentBias!
    hs.pointer.update(from: hState.pointer, count: n * h)
    profiler.time("gru fwd: input projection X·W_ihᵀ + b") { project(gates.pointer) }
    profiler.time("gru fwd: recurrent loop h·W_hhᵀ + gates (per step)") {
      T._gruForwardLoop(steps, n, h, weights.wHH, bHH + 2 * h, gates.pointer, un.pointer, hs.pointer)
    }
    hState.pointer.update(from: hs.pointer + steps * n * h, count: n * h)
  }

  /// Backpropagates `dOutput` (steps·N, H) through the last forward pass: adds into the
  /// parameter gradients and writes ``dInput``; `stateGradients` (steps·N, H), when given,
  /// receives the whole gradient reaching each h_t.
  package func backward(
    dOutput: UnsafePointer<T>, stateGradients: UnsafeMutablePointer<T>?, cellGradients: UnsafePointer<T>?
  ) {
    precondition(cellGradients == nil, "a GRU has no cell state")
    guard let input else { preconditionFailure("backward before forward, or after one without an input") }
    let (n, h) = (batchSize, hiddenSize)
    let rows = n * steps
    dh.zero()
    profiler.time("gru bwd: recurrent loop gates + dA·W_hh (per step)") {
      T._gruBackwardLoop(
        steps, n, h, weights.wHH, gates.pointer, un.pointer, hs.pointer, dOutput, dh.pointer, stateGradients)
    }
    profiler.time("gru bwd: dW_ih, dW_hh, db, dX (batched)") {
      let dWHH = weights.dWHH
      let dBHH = weights.dRecurrentBias!
      // W_hh's r and z rows from dA's first 2H columns, its n rows from dU_n.
      gemm(
        transposeA: true, m: 2 * h, n: h, k: rows, a: gates.pointer, lda: 3 * h, b: hs.pointer, ldb: h, beta: 1,
        c: dWHH, ldc: h)
      gemm(
        transposeA: true, m: h, n: h, k: rows, a: un.pointer, lda: h, b: hs.pointer, ldb: h, beta: 1,
        c: dWHH + 2 * h * h, ldc: h)
      biasGradient.zero()
      T._addColumnSums(rows, 3 * h, gates.pointer, biasGradient.pointer)
      T._axpy(3 * h, 1, biasGradient.pointer, weights.dBias)
      T._axpy(2 * h, 1, biasGradient.pointer, dBHH)
      T._addColumnSums(rows, h, un.pointer, dBHH + 2 * h)
      projectInputBackward(
        gates.pointer, rows: rows, width: 3 * h, input: input, inputSize: inputSize, wIH: weights.wIH,
        dWIH: weights.dWIH, dBias: nil, dInput: dInput.pointer)
    }
  }

  /// [hs]: ((T+1)·N, H).
  package var stateSequences: [UnsafePointer<T>] { [UnsafePointer(hs.pointer)] }

  /// [dh_{-1}]: the direct part dh ⊙ z the loop leaves at step 0, plus [dA_r, dA_z]·W_hh[r, z] and
  /// dU_n·W_hn of step 0.
  package func initialStateGradients(into gradients: [UnsafeMutablePointer<T>]) {
    let (n, h) = (batchSize, hiddenSize)
    let wHH = weights.wHH
    gradients[0].update(from: dh.pointer, count: n * h)
    gemm(m: n, n: h, k: 2 * h, a: gates.pointer, lda: 3 * h, b: wHH, ldb: h, beta: 1, c: gradients[0], ldc: h)
    gemm(m: n, n: h, k: h, a: un.pointer, lda: h, b: wHH + 2 * h * h, ldb: h, beta: 1, c: gradients[0], ldc: h)
  }
}
