/// A plain recurrent layer over a whole (T, N) time-major batch: h' = tanh(x·W_ihᵀ + h·W_hhᵀ + b),
/// PyTorch's `nn.RNN(nonlinearity: "tanh")` with its two biases folded into one.
///
/// Forward: `A = X·W_ihᵀ + b` for all N·T rows is ONE product before the time loop; each step
/// adds h_{t-1}·W_hhᵀ and applies tanh, in C on the thread team (`rnn.inc`). Backward: the loop
/// leaves dA = dh ⊙ (1 − h²) and carries dh_{t-1} = dA_t·W_hh; after it `dW_ih`, `dW_hh`, `db`
/// and `dX` are batched products. With nothing but W_hh and tanh' between dh_t and dh_{t-1}, the
/// gradient reaching early steps shrinks or grows geometrically: the vanishing and exploding
/// gradients that the gated cells were made to avoid (see `rnnlm gradient-flow`).
///
/// Stateful for truncated BPTT: the last h of one forward pass is the first of the next.
package final class TimeRNN<T: BLASScalar>: RecurrentLayer {
  /// Input size (D for the first layer, H above it).
  package let inputSize: Int
  /// Hidden size H.
  package let hiddenSize: Int
  /// Batch size N.
  package let batchSize: Int
  /// Largest number of time steps T a forward pass may have.
  package let maxSteps: Int

  /// W_ih: (H, inputSize), W_hh: (H, H), b: (H), and their gradients.
  let weights: RecurrentWeights<T>

  /// gates: (T·N, H): the pre-activations, then their gradients dA (in place).
  let gates: Buffer<T>
  /// hs: ((T+1)·N, H): slot 0 is h_{-1}, slot t+1 is h_t; slots 1...T are the output.
  let hs: Buffer<T>
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

  /// A layer over the given views, with buffers for (N, maxSteps) from `scratch`.
  package init(
    inputSize: Int, hiddenSize: Int, batchSize: Int, maxSteps: Int, weights: RecurrentWeights<T>,
    scratch: ScratchPool<T> = ScratchPool(), scratchName: String = "rnn"
  ) throws {
    self.inputSize = inputSize
    self.hiddenSize = hiddenSize
    self.batchSize = batchSize
    self.maxSteps = maxSteps
    self.weights = weights
    let rows = batchSize * maxSteps
    func buffer(_ part: String, _ count: Int) throws -> Buffer<T> {
      try scratch.buffer("\(scratchName).\(part)", count: count)
    }
    gates = try buffer("gates", rows * hiddenSize)
    hs = try buffer("hs", (rows + batchSize) * hiddenSize)
    dInput = try buffer("dInput", rows * inputSize)
    dh = try buffer("dh", batchSize * hiddenSize)
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
    precondition(state.count == 1 && state[0].count == hState.count, "RNN state must be 1 × (N, H)")
    hState.pointer.update(from: state[0], count: hState.count)
  }

  /// H.
  package var projectionWidth: Int { hiddenSize }

  /// X·W_ihᵀ + b for `rows` rows of `input` (rows, inputSize) into `output` (rows, H).
  package func projectInput(_ input: UnsafePointer<T>, rows: Int, into output: UnsafeMutablePointer<T>) {
    RNNLM.projectInput(
      input, rows: rows, inputSize: inputSize, wIH: weights.wIH, bias: weights.bias, width: hiddenSize, into: output)
  }

  /// Runs `steps` steps from the input projections `project` writes into ``gates``.
  package func forward(steps: Int, projectedBy project: (UnsafeMutablePointer<T>) -> Void) {
    precondition(steps >= 1 && steps <= maxSteps, "steps \(steps) outside 1...\(maxSteps)")
    self.input = nil
    self.steps = steps
    let (n, h) = (batchSize, hiddenSize)
    hs.pointer.update(from: hState.pointer, count: n * h)
    profiler.time("rnn fwd: input projection X·W_ihᵀ + b") { project(gates.pointer) }
    profiler.time("rnn fwd: recurrent loop h·W_hhᵀ + tanh (per step)") {
      T._rnnForwardLoop(steps, n, h, weights.wHH, gates.pointer, hs.pointer)
    }
    hState.pointer.update(from: hs.pointer + steps * n * h, count: n * h)
  }

  /// Backpropagates `dOutput` (steps·N, H) through the last forward pass: adds into the
  /// parameter gradients and writes ``dInput``; `stateGradients` (steps·N, H), when given,
  /// receives the whole gradient reaching each h_t.
  package func backward(
    dOutput: UnsafePointer<T>, stateGradients: UnsafeMutablePointer<T>?, cellGradients: UnsafePointer<T>?
  ) {
    precondition(cellGradients == nil, "a plain RNN has no cell state")
    guard let input else { preconditionFailure("backward before forward, or after one without an input") }
    let (n, h) = (batchSize, hiddenSize)
    let rows = n * steps
    dh.zero()
    profiler.time("rnn bwd: recurrent loop tanh' + dA·W_hh (per step)") {
      T._rnnBackwardLoop(steps, n, h, weights.wHH, gates.pointer, hs.pointer, dOutput, dh.pointer, stateGradients)
    }
    profiler.time("rnn bwd: dW_ih, dW_hh, db, dX (batched)") {
      gemm(
        transposeA: true, m: h, n: h, k: rows, a: gates.pointer, lda: h, b: hs.pointer, ldb: h, beta: 1,
        c: weights.dWHH, ldc: h)
      projectInputBackward(
        gates.pointer, rows: rows, width: h, input: input, inputSize: inputSize, wIH: weights.wIH,
        dWIH: weights.dWIH, dBias: weights.dBias, dInput: dInput.pointer)
    }
  }

  /// [hs]: ((T+1)·N, H).
  package var stateSequences: [UnsafePointer<T>] { [UnsafePointer(hs.pointer)] }

  /// [dh_{-1}]: dA_0·W_hh.
  package func initialStateGradients(into gradients: [UnsafeMutablePointer<T>]) {
    let (n, h) = (batchSize, hiddenSize)
    gemm(m: n, n: h, k: h, a: gates.pointer, lda: h, b: weights.wHH, ldb: h, c: gradients[0], ldc: h)
  }
}
