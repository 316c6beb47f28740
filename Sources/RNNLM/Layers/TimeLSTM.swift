/// An LSTM layer over a whole (T, N) time-major sequence batch, with the fused 4H affine step.
///
/// Gate order in every 4H row: i, f, g, o (PyTorch's), fixed in `CKernels.h`.
///
/// Forward: the input projection `A = X·W_ihᵀ + b` for all N·T rows is ONE matrix product
/// before the time loop; inside the loop each step does one product `A_t += h_{t-1}·W_hhᵀ`
/// and one fused elementwise kernel. Backward: inside the loop only the gate kernel and
/// `dh_{t-1} = dA_t·W_hh`; after it `dW_ih += dAᵀ·X`, `dW_hh += dAᵀ·H_prev` and
/// `dX = dA·W_ih` are each ONE product over all N·T rows. The time loops run in C on the thread
/// team, each thread owning a slice of the hidden units, with products that read `W_hh` in
/// place (OpenBLAS would pack all of it again for each step's 20-row product).
///
/// The layer is stateful for truncated BPTT: the last (h, c) of one forward pass is the
/// initial state of the next, until ``resetState()``; no gradient flows across that boundary.
package final class TimeLSTM<T: BLASScalar>: RecurrentLayer {
  /// Input size (D for the first layer, H above it).
  package let inputSize: Int
  /// Hidden size H.
  package let hiddenSize: Int
  /// Batch size N.
  package let batchSize: Int
  /// Largest number of time steps T a forward pass may have.
  package let maxSteps: Int

  /// W_ih: (4H, inputSize); W_hh: (4H, H); b: (4H), and their gradients: views into the parameter
  /// buffer (no recurrent bias: PyTorch's b_hh is folded into b).
  let weights: RecurrentWeights<T>
  private var wIH: UnsafeMutablePointer<T> { weights.wIH }
  private var wHH: UnsafeMutablePointer<T> { weights.wHH }
  private var bias: UnsafeMutablePointer<T> { weights.bias }
  private var dWIH: UnsafeMutablePointer<T> { weights.dWIH }
  private var dWHH: UnsafeMutablePointer<T> { weights.dWHH }
  private var dBias: UnsafeMutablePointer<T> { weights.dBias }

  /// gates: (T·N, 4H): pre-activations, turned into activations in place by the forward gate
  /// kernel, and into their gradients (dA) in place by the backward one.
  let gates: Buffer<T>
  /// hs: ((T+1)·N, H): slot 0 is h_{-1}, slot t+1 is h_t; slots 1...T are the output.
  let hs: Buffer<T>
  /// cs: ((T+1)·N, H): slot 0 is c_{-1}, slot t+1 is c_t.
  let cs: Buffer<T>
  /// tanhC: (T·N, H): tanh(c_t), kept for backward.
  let tanhC: Buffer<T>
  /// dInput: (T·N, inputSize): gradient of the input, written by ``backward(dOutput:)``.
  package let dInput: Buffer<T>
  /// dh, dc: (N, H): gradients carried from step t to step t-1 in backward.
  let dh: Buffer<T>, dc: Buffer<T>
  /// hState, cState: (N, H): the state carried to the next forward pass.
  let hState: Buffer<T>, cState: Buffer<T>

  /// The input of the last forward pass, (steps·N, inputSize), which backward reads; nil after
  /// ``forward(steps:projectedBy:)``.
  package var input: UnsafePointer<T>?
  private var steps = 0
  /// Times the layer's parts when set (benchmark breakdown).
  package var profiler: Profiler?

  /// A layer over the given parameter and gradient views, with buffers for (N, maxSteps): its
  /// carried state of its own, the rest from `scratch` under names starting `scratchName`.
  package init(
    inputSize: Int, hiddenSize: Int, batchSize: Int, maxSteps: Int, weights: RecurrentWeights<T>,
    scratch: ScratchPool<T> = ScratchPool(), scratchName: String = "lstm"
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
    gates = try buffer("gates", rows * 4 * hiddenSize)
    hs = try buffer("hs", (rows + batchSize) * hiddenSize)
    cs = try buffer("cs", (rows + batchSize) * hiddenSize)
    tanhC = try buffer("tanhC", rows * hiddenSize)
    dInput = try buffer("dInput", rows * inputSize)
    dh = try buffer("dh", batchSize * hiddenSize)
    dc = try buffer("dc", batchSize * hiddenSize)
    hState = try Buffer(count: batchSize * hiddenSize)
    cState = try Buffer(count: batchSize * hiddenSize)
  }

  /// The hidden states h_0 ... h_{T-1} of the last forward pass: (T·N, H).
  package var output: UnsafePointer<T> { UnsafePointer(hs.pointer + batchSize * hiddenSize) }

  /// Forgets the carried state: the next forward pass starts from h = c = 0.
  package func resetState() {
    hState.zero()
    cState.zero()
  }

  /// The carried state [h, c], each (N, H) row-major.
  package var state: [[T]] { [hState.array, cState.array] }

  /// Replaces the carried state [h, c], each (N, H) row-major.
  package func setState(_ state: [[T]]) {
    precondition(state.count == 2 && state.allSatisfy { $0.count == hState.count }, "LSTM state must be 2 × (N, H)")
    hState.pointer.update(from: state[0], count: hState.count)
    cState.pointer.update(from: state[1], count: cState.count)
  }

  /// 4H.
  package var projectionWidth: Int { 4 * hiddenSize }

  /// X·W_ihᵀ + b for `rows` rows of `input` (rows, inputSize) into `output` (rows, 4H).
  package func projectInput(_ input: UnsafePointer<T>, rows: Int, into output: UnsafeMutablePointer<T>) {
    RNNLM.projectInput(
      input, rows: rows, inputSize: inputSize, wIH: wIH, bias: bias, width: 4 * hiddenSize, into: output)
  }

  /// Runs `steps` time steps from the input projections `project` writes into ``gates``.
  package func forward(steps: Int, projectedBy project: (UnsafeMutablePointer<T>) -> Void) {
    precondition(steps >= 1 && steps <= maxSteps, "steps \(steps) outside 1...\(maxSteps)")
    self.input = nil
    self.steps = steps
    let n = batchSize
    let h = hiddenSize
    hs.pointer.update(from: hState.pointer, count: n * h)
    cs.pointer.update(from: cState.pointer, count: n * h)

    profiler.time("lstm fwd: input projection X·W_ihᵀ + b") { project(gates.pointer) }
    profiler.time("lstm fwd: recurrent loop h·W_hhᵀ + gates (per step)") {
      T._lstmForwardLoop(steps, n, h, wHH, gates.pointer, hs.pointer, cs.pointer, tanhC.pointer)
    }
    hState.pointer.update(from: hs.pointer + steps * n * h, count: n * h)
    cState.pointer.update(from: cs.pointer + steps * n * h, count: n * h)
  }

  /// Backpropagates `dOutput` (steps·N, H), the gradient of ``output``, through the last
  /// forward pass: adds into the parameter gradients and writes ``dInput``; `stateGradients`
  /// (steps·N, H), when given, receives the whole gradient reaching each h_t.
  package func backward(
    dOutput: UnsafePointer<T>, stateGradients: UnsafeMutablePointer<T>?, cellGradients: UnsafePointer<T>?
  ) {
    guard let input else { preconditionFailure("backward before forward, or after one without an input") }
    let n = batchSize
    let h = hiddenSize
    let rows = n * steps
    dh.zero()
    dc.zero()
    profiler.time("lstm bwd: recurrent loop gates + dA·W_hh (per step)") {
      T._lstmBackwardLoop(
        steps, n, h, wHH, gates.pointer, cs.pointer, tanhC.pointer, dOutput, cellGradients, dh.pointer, dc.pointer,
        stateGradients)
    }
    profiler.time("lstm bwd: dW_ih, dW_hh, db, dX (batched)") { batchedGradients(input: input, rows: rows) }
  }

  /// [hs, cs]: ((T+1)·N, H) each.
  package var stateSequences: [UnsafePointer<T>] { [UnsafePointer(hs.pointer), UnsafePointer(cs.pointer)] }

  /// [dh_{-1}, dc_{-1}]: dA_0·W_hh, and the carried dc the backward loop ends with.
  package func initialStateGradients(into gradients: [UnsafeMutablePointer<T>]) {
    let (n, h) = (batchSize, hiddenSize)
    gemm(m: n, n: h, k: 4 * h, a: gates.pointer, lda: 4 * h, b: wHH, ldb: h, c: gradients[0], ldc: h)
    gradients[1].update(from: dc.pointer, count: n * h)
  }

  private func batchedGradients(input: UnsafePointer<T>, rows: Int) {
    let h4 = 4 * hiddenSize
    gemm(
      transposeA: true, m: h4, n: hiddenSize, k: rows,
      a: gates.pointer, lda: h4, b: hs.pointer, ldb: hiddenSize, beta: 1, c: dWHH, ldc: hiddenSize)
    projectInputBackward(
      gates.pointer, rows: rows, width: h4, input: input, inputSize: inputSize, wIH: wIH, dWIH: dWIH, dBias: dBias,
      dInput: dInput.pointer)
  }
}
