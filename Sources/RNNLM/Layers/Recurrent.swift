/// The recurrent cells the toolkit has, and everything that differs between them: gate count,
/// carried state, parameter names and shapes, FLOPs. The model, trainer, checkpoints and
/// benchmarks ask the cell instead of assuming an LSTM.
///
/// Each cell's forward and backward live in one Swift file (`TimeLSTM`, `TimeGRU`, `TimeRNN`)
/// and one C file (`lstm.inc`, `gru.inc`, `rnn.inc`, where the formulas are written out).
/// Weights use PyTorch's layouts and names, so `nn.LSTM`, `nn.GRU` and `nn.RNN` load them.
public enum RecurrentCell: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
  /// Long short-term memory: gates i, f, g, o; carried state (h, c).
  case lstm
  /// Gated recurrent unit as PyTorch's `nn.GRU`: gates r, z, n; carried state h.
  case gru
  /// The plain recurrent network h' = tanh(x·W_ihᵀ + h·W_hhᵀ + b) (`nn.RNN`, tanh).
  case rnn

  /// Blocks of H rows in W_ih and W_hh: 4, 3, 1.
  public var gateCount: Int {
    switch self {
    case .lstm: return 4
    case .gru: return 3
    case .rnn: return 1
    }
  }

  /// Names of the carried state tensors, each (N, H), in the order layers report them.
  public var stateNames: [String] { self == .lstm ? ["h", "c"] : ["h"] }

  /// Whether the recurrent bias `bias_hh` is a parameter of its own. Only the GRU's is: r
  /// multiplies b_hn. The LSTM and the RNN keep one bias (`bias_ih`); checkpoints write their
  /// `bias_hh` as zeros, so PyTorch's modules load them unchanged.
  public var hasRecurrentBias: Bool { self == .gru }

  /// The name people know it by.
  public var description: String {
    switch self {
    case .lstm: return "LSTM"
    case .gru: return "GRU"
    case .rnn: return "RNN"
    }
  }

  /// Parameter names and shapes of layer `layer` with `inputSize` inputs and `hiddenSize` units,
  /// named `<prefix>weight_ih_l<layer><suffix>` and so on (`rnn.` for a model's one recurrent
  /// stack; the suffix `_reverse` for the backward direction of a bidirectional one, as PyTorch
  /// names it).
  public func parameterLayout(
    layer l: Int, inputSize: Int, hiddenSize h: Int, prefix: String = "rnn.", suffix: String = ""
  ) -> [(name: String, shape: [Int])] {
    let g = gateCount * h
    var layout: [(name: String, shape: [Int])] = [
      ("\(prefix)weight_ih_l\(l)\(suffix)", [g, inputSize]), ("\(prefix)weight_hh_l\(l)\(suffix)", [g, h]),
      ("\(prefix)bias_ih_l\(l)\(suffix)", [g]),
    ]
    if hasRecurrentBias { layout.append(("\(prefix)bias_hh_l\(l)\(suffix)", [g])) }
    return layout
  }

  /// Matrix-product FLOPs per token of one layer's forward pass: the input projection and the
  /// recurrent product, 2·(inputSize + H)·gates·H. (Backward costs twice that.)
  public func forwardFLOPsPerToken(inputSize: Int, hiddenSize h: Int) -> Double {
    2 * Double(inputSize + h) * Double(gateCount * h)
  }

  /// A layer of this cell over the parameters of layer `l` in `parameters` (or over `weights`,
  /// their views, when given).
  package func makeLayer<T: BLASScalar>(
    layer l: Int, inputSize: Int, hiddenSize: Int, batchSize: Int, maxSteps: Int, parameters p: ParameterStore<T>,
    scratch: ScratchPool<T>, weights given: RecurrentWeights<T>? = nil, prefix: String = "rnn.", suffix: String = ""
  ) throws -> any RecurrentLayer<T> {
    let weights =
      try given
      ?? RecurrentWeights(store: p, layer: l, recurrentBias: hasRecurrentBias, prefix: prefix, suffix: suffix)
    let name = "\(prefix)\(rawValue)\(l)\(suffix)"
    switch self {
    case .lstm:
      return try TimeLSTM(
        inputSize: inputSize, hiddenSize: hiddenSize, batchSize: batchSize, maxSteps: maxSteps, weights: weights,
        scratch: scratch, scratchName: name)
    case .gru:
      return try TimeGRU(
        inputSize: inputSize, hiddenSize: hiddenSize, batchSize: batchSize, maxSteps: maxSteps, weights: weights,
        scratch: scratch, scratchName: name)
    case .rnn:
      return try TimeRNN(
        inputSize: inputSize, hiddenSize: hiddenSize, batchSize: batchSize, maxSteps: maxSteps, weights: weights,
        scratch: scratch, scratchName: name)
    }
  }
}

/// A recurrent Time layer over a whole (T, N) time-major batch, stateful for truncated BPTT:
/// the last state of one forward pass is the first of the next, until ``resetState()``.
package protocol RecurrentLayer<Scalar>: AnyObject {
  associatedtype Scalar: BLASScalar
  /// Input size (D for the first layer, H above it) and hidden size H.
  var inputSize: Int { get }
  var hiddenSize: Int { get }
  /// h_0 ... h_{T-1} of the last forward pass: (T·N, H).
  var output: UnsafePointer<Scalar> { get }
  /// dInput: (T·N, inputSize), written by ``backward(dOutput:stateGradients:)``.
  var dInput: Buffer<Scalar> { get }
  /// Times the layer's parts when set.
  var profiler: Profiler? { get set }
  /// Batch size N.
  var batchSize: Int { get }
  /// The input of the last forward pass, (steps·N, inputSize), which the backward pass reads; nil
  /// after ``forward(steps:projectedBy:)``, whose backward pass has no input to read and stops.
  var input: UnsafePointer<Scalar>? { get set }
  /// The width G·H of a row of the input projection.
  var projectionWidth: Int { get }
  /// The cell's input projection of `rows` rows of `input` (rows, inputSize): X·W_ihᵀ plus every
  /// bias the cell adds before its time loop, written to `output`: (rows, G·H). It is what
  /// ``forward(input:steps:)`` computes for its rows before the loop.
  func projectInput(_ input: UnsafePointer<Scalar>, rows: Int, into output: UnsafeMutablePointer<Scalar>)
  /// Runs `steps` steps whose input projections `project` writes into the (steps·N, G·H) buffer it
  /// is given, row t·N + n for token (t, n), as ``projectInput(_:rows:into:)`` would: for
  /// evaluation (a backward pass after it has no input to read and stops).
  func forward(steps: Int, projectedBy project: (UnsafeMutablePointer<Scalar>) -> Void)
  /// Backpropagates `dOutput` (steps·N, H): adds into the parameter gradients, writes ``dInput``.
  /// `stateGradients`, when given, (steps·N, H), receives the whole gradient reaching each h_t.
  /// `cellGradients`, the LSTM's only, when given, (steps·N, H): gradients reaching each c_t
  /// from outside the layer (a decoder that starts from the cell state at a text's last step).
  func backward(
    dOutput: UnsafePointer<Scalar>, stateGradients: UnsafeMutablePointer<Scalar>?,
    cellGradients: UnsafePointer<Scalar>?)
  /// The carried states at every step of the last forward pass, in ``RecurrentCell/stateNames``
  /// order, each ((T+1)·N, H): slot 0 the state the pass started from, slot t + 1 the state
  /// after step t (row t·N + n of slot t + 1 is at offset ((t + 1)·N + n)·H).
  var stateSequences: [UnsafePointer<Scalar>] { get }
  /// After ``backward(dOutput:stateGradients:cellGradients:)``: writes the gradient reaching each
  /// state the pass started from (``RecurrentCell/stateNames`` order), each (N, H), into
  /// `gradients`, so that an encoder can receive its decoder's.
  func initialStateGradients(into gradients: [UnsafeMutablePointer<Scalar>])
  /// Forgets the carried state (zeros).
  func resetState()
  /// The carried state tensors in ``RecurrentCell/stateNames`` order, each (N, H) row-major.
  var state: [[Scalar]] { get }
  /// Replaces the carried state; the arrays as ``state`` gives them.
  func setState(_ state: [[Scalar]])
}

extension RecurrentLayer {
  /// Runs `steps` steps over `input`: (steps·N, inputSize), time-major, which must stay unchanged
  /// until the backward pass reads it.
  package func forward(input: UnsafePointer<Scalar>, steps: Int) {
    forward(steps: steps) { projectInput(input, rows: batchSize * steps, into: $0) }
    self.input = input
  }

  /// Backward without gradients from outside the layer reaching its cell states.
  package func backward(dOutput: UnsafePointer<Scalar>, stateGradients: UnsafeMutablePointer<Scalar>?) {
    backward(dOutput: dOutput, stateGradients: stateGradients, cellGradients: nil)
  }

  /// Backward without recording the state gradients.
  package func backward(dOutput: UnsafePointer<Scalar>) {
    backward(dOutput: dOutput, stateGradients: nil, cellGradients: nil)
  }
}

/// One layer's parameter and gradient views: W_ih (G·H, inputSize), W_hh (G·H, H), b_ih (G·H),
/// and for the GRU b_hh (G·H); nil where the cell has no recurrent bias. Views into a
/// ``ParameterStore`` keep the store alive.
package struct RecurrentWeights<T: BLASScalar> {
  package let wIH, bias: UnsafeMutablePointer<T>
  package let dWIH, dWHH, dBias: UnsafeMutablePointer<T>
  /// W_hh as stored in the parameters.
  package let storedWHH: UnsafeMutablePointer<T>
  /// Weight drop (DropConnect on W_hh), when the model uses it.
  package let weightDrop: WeightDrop<T>?
  /// The W_hh the time loops read: the masked copy while weight drop is active for a pass,
  /// else the stored weights.
  package var wHH: UnsafeMutablePointer<T> {
    if let weightDrop, weightDrop.active { return weightDrop.masked.pointer }
    return storedWHH
  }
  package let recurrentBias, dRecurrentBias: UnsafeMutablePointer<T>?
  /// What owns the memory the views point into, kept alive as long as the views.
  private let owner: AnyObject?

  /// The views of layer `l` in `store` (names starting `prefix` and ending `suffix`), with
  /// weight drop of rate `weightDrop` (0: none).
  package init(
    store p: ParameterStore<T>, layer l: Int, recurrentBias: Bool, weightDrop: Double = 0, prefix: String = "rnn.",
    suffix: String = ""
  ) throws {
    owner = p
    let (ih, hh, b, bhh) = (
      "\(prefix)weight_ih_l\(l)\(suffix)", "\(prefix)weight_hh_l\(l)\(suffix)", "\(prefix)bias_ih_l\(l)\(suffix)",
      "\(prefix)bias_hh_l\(l)\(suffix)"
    )
    (wIH, storedWHH, bias) = (p.value(ih), p.value(hh), p.value(b))
    self.weightDrop = weightDrop > 0 ? try WeightDrop(rate: weightDrop, count: p.view(hh).count) : nil
    (dWIH, dWHH, dBias) = (p.gradient(ih), p.gradient(hh), p.gradient(b))
    self.recurrentBias = recurrentBias ? p.value(bhh) : nil
    dRecurrentBias = recurrentBias ? p.gradient(bhh) : nil
  }

}

// MARK: - The parts every cell shares: the input projection and its batched gradients

/// `gates` (rows, width) = X·W_ihᵀ + bias: ONE product over all N·T rows, before the time loop.
/// `input`: (rows, inputSize); `wIH`: (width, inputSize); `bias`: (width).
func projectInput<T: BLASScalar>(
  _ input: UnsafePointer<T>, rows: Int, inputSize: Int, wIH: UnsafePointer<T>, bias: UnsafePointer<T>, width: Int,
  into gates: UnsafeMutablePointer<T>
) {
  for r in 0..<rows { (gates + r * width).update(from: bias, count: width) }
  gemm(
    transposeB: true, m: rows, n: width, k: inputSize, a: input, lda: inputSize, b: wIH, ldb: inputSize, beta: 1,
    c: gates, ldc: width)
}

/// The input projection's gradients after the time loop, each ONE product over all N·T rows:
/// `dW_ih += dAᵀ·X`, `db += Σ_rows dA` (unless `dBias` is nil), `dX = dA·W_ih`. `dA`: (rows, width).
func projectInputBackward<T: BLASScalar>(
  _ dA: UnsafePointer<T>, rows: Int, width: Int, input: UnsafePointer<T>, inputSize: Int, wIH: UnsafePointer<T>,
  dWIH: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>?, dInput: UnsafeMutablePointer<T>
) {
  gemm(
    transposeA: true, m: width, n: inputSize, k: rows, a: dA, lda: width, b: input, ldb: inputSize, beta: 1, c: dWIH,
    ldc: inputSize)
  if let dBias { T._addColumnSums(rows, width, dA, dBias) }
  gemm(m: rows, n: inputSize, k: width, a: dA, lda: width, b: wIH, ldb: inputSize, c: dInput, ldc: inputSize)
}

// MARK: - Weight drop

/// DropConnect on a layer's W_hh (AWD-LSTM's weight drop): before a training pass, every element
/// of W_hh is dropped with probability p and the others are scaled by 1 / (1 − p), one mask for
/// the whole batch; the time loops read the masked copy, so they run as fast as without it, and
/// the gradient of the stored weights is the masked copy's gradient times the mask.
package final class WeightDrop<T: BLASScalar> {
  /// The probability of dropping an element.
  package let rate: Double
  /// masked: (G·H, H), the weights the loops read during an active pass.
  package let masked: Buffer<T>
  /// mask: (G·H, H), 0 or 1 / (1 − p).
  package let mask: Buffer<T>
  private let bits: UnsafeMutablePointer<UInt32>
  /// Whether the current pass reads the masked copy.
  package private(set) var active = false

  init(rate: Double, count: Int) throws {
    precondition(rate >= 0 && rate < 1, "weight drop must be in [0, 1), got \(rate)")
    self.rate = rate
    masked = try Buffer(count: count)
    mask = try Buffer(count: count)
    bits = .allocate(capacity: max(count, 1))
  }

  deinit { bits.deallocate() }

  /// Draws a mask from `generator` and fills ``masked`` from `weights`, for a training pass; or,
  /// when not training, makes the loops read the stored weights.
  package func prepare(weights: UnsafePointer<T>, training: Bool, generator: inout SeededGenerator) {
    active = training
    guard training else { return }
    generator.fill(bits, count: masked.count)
    T._dropout(
      masked.count, weights, bits, SeededGenerator.dropThreshold(rate), T(1 / (1 - rate)), mask.pointer,
      masked.pointer)
  }

  /// Turns the gradient of the masked copy (accumulated alone in `gradient` during the pass)
  /// into the gradient of the stored weights: gradient ⊙ mask.
  package func maskGradient(_ gradient: UnsafeMutablePointer<T>) {
    guard active else { return }
    let m = mask.pointer
    for i in 0..<masked.count { gradient[i] *= m[i] }
  }
}
