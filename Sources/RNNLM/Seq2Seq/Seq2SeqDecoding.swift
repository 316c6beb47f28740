import Foundation

/// A decoded output: its token ids (without `<eos>`), its log-probability under the model
/// (natural log, the `<eos>` included when it was produced), and the attention weights of each
/// output step over the source steps (empty without attention or when not recorded).
public struct Decoded: Sendable, Equatable {
  /// Output token ids.
  public var tokens: [Int32]
  /// Σ log p of the chosen tokens.
  public var logProbability: Double
  /// attention[i][s]: the weight of source step s (in the order the encoder read it) when the
  /// i-th output token (or the final `<eos>`) was chosen.
  public var attention: [[Double]]
}

extension Seq2SeqModel {
  /// Log-softmax of one row of logits, in Double.
  private func logSoftmax(_ row: UnsafePointer<T>, into out: inout [Double]) {
    let v = config.targetVocabularySize
    var m = -Double.infinity
    for j in 0..<v { m = max(m, Double(row[j])) }
    var sum = 0.0
    for j in 0..<v { sum += Foundation.exp(Double(row[j]) - m) }
    let log = m + Foundation.log(sum)
    for j in 0..<v { out[j] = Double(row[j]) - log }
  }

  /// Greedy decoding of the batch's sources (their targets are ignored): at every step each
  /// sequence takes its most probable token, until `<eos>` or `maxLength` tokens. Filler rows
  /// give empty outputs. With `recordAttention`, each output keeps its attention weights.
  package func greedyDecode(_ batch: Seq2SeqBatch, maxLength: Int, recordAttention: Bool = false) -> [Decoded] {
    let n = batchSize
    let wasTraining = training
    training = false
    defer { training = wasTraining }
    encode(batch)
    startDecoder()
    var inputs = [Int32](repeating: Seq2SeqVocabulary.startID, count: n)
    var results = [Decoded](repeating: Decoded(tokens: [], logProbability: 0, attention: []), count: n)
    var done = batch.weights.map { $0 == 0 }
    var logp = [Double](repeating: 0, count: config.targetVocabularySize)
    for _ in 0...maxLength where done.contains(false) {
      let logits = inputs.withUnsafeBufferPointer { decode(tokens: $0.baseAddress!, steps: 1) }
      for r in 0..<n where !done[r] {
        logSoftmax(logits + r * config.targetVocabularySize, into: &logp)
        let token = Int32(logp.indices.max { logp[$0] < logp[$1] }!)
        results[r].logProbability += logp[Int(token)]
        if recordAttention, let attention {
          results[r].attention.append(
            (0..<batch.sourceLengths[r]).map { Double(attention.weights.pointer[r * batch.sourceSteps + $0]) })
        }
        if token == Seq2SeqVocabulary.endID || results[r].tokens.count == maxLength {
          done[r] = true
        } else {
          results[r].tokens.append(token)
        }
        inputs[r] = token
      }
    }
    return results
  }

  /// Beam search for one source with this model's batch size as the beam width K: the K most
  /// probable partial outputs are kept at every step; an output ends at `<eos>` or after
  /// `maxLength` tokens; the search stops when no partial output can still beat the best ended
  /// one (log-probabilities only fall). With K = 1 it is greedy decoding.
  package func beamSearch(source: [Int32], maxLength: Int, recordAttention: Bool = false) -> Decoded {
    let k = batchSize
    let wasTraining = training
    training = false
    defer { training = wasTraining }
    var batch = Seq2SeqBatch(batchSize: k, maxSourceSteps: source.count, maxTargetSteps: 1)
    batch.fill(
      from: [EncodedPair(source: source, target: [])], indices: [Int](repeating: 0, count: k),
      reverse: config.reverseSource)
    encode(batch)
    startDecoder()
    var live = [Decoded(tokens: [], logProbability: 0, attention: [])]
    var ended: [Decoded] = []
    var inputs = [Int32](repeating: Seq2SeqVocabulary.startID, count: k)
    var logp = [Double](repeating: 0, count: config.targetVocabularySize)
    for _ in 0...maxLength {
      let logits = inputs.withUnsafeBufferPointer { decode(tokens: $0.baseAddress!, steps: 1) }
      var candidates: [(parent: Int, token: Int32, score: Double)] = []
      for (i, hypothesis) in live.enumerated() {
        logSoftmax(logits + i * config.targetVocabularySize, into: &logp)
        let top = logp.indices.sorted { (logp[$0], -$0) > (logp[$1], -$1) }.prefix(k)
        for j in top { candidates.append((i, Int32(j), hypothesis.logProbability + logp[j])) }
      }
      candidates.sort { ($0.score, -$0.parent, -Int($0.token)) > ($1.score, -$1.parent, -Int($1.token)) }
      var next: [Decoded] = []
      var parents: [Int] = []
      for c in candidates.prefix(k) {
        var d = live[c.parent]
        d.logProbability = c.score
        if recordAttention, let attention {
          d.attention.append((0..<source.count).map { Double(attention.weights.pointer[c.parent * source.count + $0]) })
        }
        if c.token == Seq2SeqVocabulary.endID || d.tokens.count == maxLength {
          ended.append(d)
        } else {
          d.tokens.append(c.token)
          next.append(d)
          parents.append(c.parent)
        }
      }
      let bestEnded = ended.map(\.logProbability).max() ?? -.infinity
      live = next.filter { $0.logProbability > bestEnded }
      parents = zip(next, parents).filter { $0.0.logProbability > bestEnded }.map(\.1)
      if live.isEmpty { break }
      // Each kept output continues from its parent's state.
      for layer in decoderLayers {
        let state = layer.state
        let h = config.hiddenSize
        layer.setState(
          state.map { s in
            (0..<k).flatMap { row in
              let from = parents[min(row, parents.count - 1)]
              return Array(s[(from * h)..<((from + 1) * h)])
            }
          })
      }
      for row in 0..<k { inputs[row] = live[min(row, live.count - 1)].tokens.last! }
    }
    return (ended + live).max { $0.logProbability < $1.logProbability }!
  }
}

/// A heatmap of attention weights as SVG: output tokens down the side, source tokens along the
/// top, darker for more weight.
public func attentionHeatmapSVG(source: [String], output: [String], weights: [[Double]]) -> String {
  let cell = 22.0
  let (left, top) = (70.0, 70.0)
  let width = left + cell * Double(source.count) + 20
  let height = top + cell * Double(output.count) + 20
  func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: " ", with: "␣")
  }
  var body = ""
  for (i, row) in weights.enumerated() where i < output.count {
    for (j, w) in row.enumerated() where j < source.count {
      let shade = Int(255 * (1 - min(max(w, 0), 1)))
      body += String(
        format: "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"rgb(%d,%d,255)\"/>",
        left + cell * Double(j), top + cell * Double(i), cell, cell, shade, shade)
    }
  }
  for (j, s) in source.enumerated() {
    let x = left + cell * (Double(j) + 0.5)
    body +=
      "<text x=\"\(x)\" y=\"\(top - 8)\" font-size=\"13\" text-anchor=\"start\" transform=\"rotate(-60 \(x) \(top - 8))\">\(escape(s))</text>"
  }
  for (i, s) in output.enumerated() {
    body +=
      "<text x=\"\(left - 8)\" y=\"\(top + cell * (Double(i) + 0.7))\" font-size=\"13\" text-anchor=\"end\">\(escape(s))</text>"
  }
  return """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="monospace">
    <rect width="100%" height="100%" fill="white"/>
    \(body)
    </svg>

    """
}
