import Foundation
import Testing

@testable import RNNLM

/// Damaged checkpoints, generated from a seed: bit flips, truncations and edits of the JSON
/// header like those a damaged disk or a hand edit makes. Every case must end in an error or in
/// a file that a separate, simpler reading of the format (``formatCheck(_:)``) finds sound; an
/// accepted file must load, evaluate and resume without trapping. A trap fails the whole test
/// run, and the time limit catches a hang.
@Suite(.timeLimit(.minutes(2))) struct CheckpointFuzzTests {
  /// What happened to the cases of one run.
  struct Counts: CustomStringConvertible {
    var cases = 0, cleanErrors = 0, acceptedAndSound = 0
    var acceptedButUnsound: [String] = []
    var description: String {
      "\(cases) cases: \(cleanErrors) clean errors, \(acceptedAndSound) accepted and sound, "
        + "\(acceptedButUnsound.count) accepted but unsound"
    }
  }

  @Test(arguments: RecurrentCell.allCases)
  func damagedCheckpointsAreRefusedOrSound(cell: RecurrentCell) throws {
    // The GRU's run uses Adam, so that its moments are in the file too; the RNN's the adaptive
    // softmax, over the vocabulary in order of frequency.
    let data = cell == .rnn ? try RunTests.dataset().orderedByFrequency() : try RunTests.dataset()
    let trainer = try RunTests.trainer(
      data, cell: cell, optimizer: cell == .gru ? .adam : .sgd, adaptiveCutoffs: cell == .rnn ? [4, 8] : nil)
    _ = try trainer.run(data, limits: RunLimits(maxBatches: 3))
    let original = [UInt8](try trainer.checkpoint().encoded())
    #expect(formatCheck(original) == nil, "the undamaged file must pass the format check")
    let dir = try DataTests.temporaryDirectory()
    var g = SeededGenerator(seed: 2024 + UInt64(cell.gateCount))
    var counts = Counts()
    var kinds: [String: Int] = [:]
    for i in 0..<150 {
      let (kind, bytes) = damage(original, &g)
      kinds[kind, default: 0] += 1
      let path = dir + "/case-\(i).safetensors"
      try Data(bytes).write(to: URL(fileURLWithPath: path))
      counts.cases += 1
      let summary = Result { try CheckpointSummary(contentsOf: path) }
      let read = Result { try Checkpoint.read(from: path) }
      switch read {
      case .failure(let error):
        // The summary reads the same header; it may not accept what the reader refused for a
        // reason in the header. (It does not read the data, so it may accept a flipped tensor.)
        #expect(error is CheckpointError, "case \(i) (\(kind)): \(type(of: error)) \(error)")
        #expect(!"\(error)".isEmpty)
        counts.cleanErrors += 1
      case .success(let checkpoint):
        if case .failure(let error) = summary { Issue.record("case \(i) (\(kind)): read accepted, summary: \(error)") }
        if let problem = formatCheck(bytes) {
          counts.acceptedButUnsound.append("case \(i) (\(kind)): \(problem)")
          continue
        }
        counts.acceptedAndSound += 1
        // An accepted file is usable: it evaluates (perhaps badly: the values may be damaged) and,
        // with its run state, resumes or refuses with an error.
        let model = try TrainedModel(checkpoint: checkpoint)
        let words = checkpoint.vocabulary.filter { $0 != Vocabulary.endOfSentence }.prefix(5).joined(separator: " ")
        _ = try? model.evaluate(text: words + "\n" + words + "\n", batchSize: 2, steps: 3)
        _ = try? Trainer(resuming: checkpoint)
      }
    }
    #expect(counts.acceptedButUnsound.isEmpty, "\(counts.acceptedButUnsound)")
    #expect(counts.cleanErrors > counts.cases / 2, "\(counts); kinds \(kinds)")
    #expect(counts.acceptedAndSound > 0, "flips in the tensor data must be accepted: \(counts)")
  }
}

/// Writes `cases` damaged copies of `original` (see ``damage(_:_:)``, drawn from `seed`) into
/// `directory` and hands each path to `open`, which reads it, calls `accepted` once the reader
/// has accepted it, and uses it. Every error must be a CheckpointError, or an AllocationError for
/// a header that asks for more memory than there is; more than half the cases must be refused
/// and at least one accepted.
func expectDamagedCheckpointsRefusedOrUsable(
  _ original: [UInt8], cases: Int, seed: UInt64, directory: String, what: String,
  sourceLocation: SourceLocation = #_sourceLocation, open: (_ path: String, _ accepted: () -> Void) throws -> Void
) throws {
  var g = SeededGenerator(seed: seed)
  var (refused, accepted) = (0, 0)
  for i in 0..<cases {
    let (kind, bytes) = damage(original, &g)
    let path = directory + "/case-\(i).safetensors"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    do {
      try open(path) { accepted += 1 }
    } catch {
      #expect(
        error is CheckpointError || error is AllocationError, "case \(i) (\(kind)): \(type(of: error)) \(error)",
        sourceLocation: sourceLocation)
      refused += 1
    }
  }
  print("damaged \(what) checkpoints: \(refused) refused, \(accepted) accepted")
  #expect(
    refused > cases / 2 && accepted > 0, "\(refused) refused, \(accepted) accepted", sourceLocation: sourceLocation)
}

/// A damaged copy of `bytes` and the kind of damage.
func damage(_ bytes: [UInt8], _ g: inout SeededGenerator) -> (kind: String, bytes: [UInt8]) {
  func below(_ n: Int) -> Int { Int(g.next() % UInt64(max(n, 1))) }
  let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
  let dataStart = 8 + headerLength
  var out = bytes
  switch below(5) {
  case 0:
    for _ in 0..<(1 + below(4)) { out[below(out.count)] ^= UInt8(1 << below(8)) }
    return ("bit flips anywhere", out)
  case 1:
    for _ in 0..<(1 + below(3)) { out[8 + below(headerLength)] ^= UInt8(1 << below(8)) }
    return ("bit flips in the header", out)
  case 2:
    if below(2) == 0 { return ("truncated", Array(out.prefix(below(out.count)))) }
    return ("bytes appended", out + (0..<(1 + below(16))).map { _ in UInt8(below(256)) })
  case 3:
    let length = [0, 1, headerLength - 8, headerLength + 8, Int(UInt32.max), Int.max >> 1][below(6)]
    for k in 0..<8 { out[k] = UInt8(truncatingIfNeeded: length >> (8 * k)) }
    return ("header length \(length)", out)
  default:
    var header = try! JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) as! [String: Any]
    let kind = editHeader(&header, &g)
    var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while (8 + json.count) % 8 != 0 { json.append(0x20) }
    let length = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
    return (kind, length + [UInt8](json) + bytes[dataStart...])
  }
}

/// Edits one thing in a checkpoint's JSON header; returns what it did.
func editHeader(_ header: inout [String: Any], _ g: inout SeededGenerator) -> String {
  func below(_ n: Int) -> Int { Int(g.next() % UInt64(max(n, 1))) }
  let names = header.keys.filter { $0 != "__metadata__" }.sorted()
  let name = names[below(names.count)]
  var entry = header[name] as! [String: Any]
  let offsets = entry["data_offsets"] as! [Int]
  let shape = entry["shape"] as! [Int]
  var meta = header["__metadata__"] as! [String: String]
  let extremes: [Any] = [0, -1, 1, 3, 1_000_000_000, Int.max, "x", NSNull(), 1.5]
  switch below(9) {
  case 0:
    let shift = 4 * (1 + below(4)) * (below(2) == 0 ? 1 : -1)
    entry["data_offsets"] = [offsets[0] + shift, offsets[1] + shift]
    header[name] = entry
    return "\(name) offsets shifted by \(shift)"
  case 1:
    let other = header[names[below(names.count)]] as! [String: Any]
    let begin = (other["data_offsets"] as! [Int])[0]
    entry["data_offsets"] = [begin, begin + offsets[1] - offsets[0]]
    header[name] = entry
    return "\(name) moved onto another tensor's bytes"
  case 2:
    var s = shape
    switch below(3) {
    case 0: if !s.isEmpty { s[below(s.count)] += below(2) == 0 ? 1 : -1 }
    case 1: s.reverse()
    default: s.append(1)
    }
    entry["shape"] = s
    header[name] = entry
    return "\(name) shape \(shape) → \(s)"
  case 3:
    entry["dtype"] = ["F16", "I32", "F64", "", 7][below(5)]
    header[name] = entry
    return "\(name) dtype changed"
  case 4:
    if below(2) == 0 {
      header[name] = nil
      return "\(name) removed"
    }
    header["extra.weight"] = ["dtype": "F32", "shape": [0], "data_offsets": [0, 0]]
    return "an empty tensor added"
  case 5:
    var config = try! JSONSerialization.jsonObject(with: Data(meta["config"]!.utf8)) as! [String: Any]
    let field = ["vocabularySize", "embeddingSize", "hiddenSize", "layers", "cell", "tied", "dropout"][below(7)]
    let value: Any =
      field == "cell"
      ? ["lstm", "gru", "rnn", "xyz"][below(4)] : field == "tied" ? below(2) == 0 : extremes[below(extremes.count)]
    config[field] = value
    meta["config"] = String(decoding: try! JSONSerialization.data(withJSONObject: config), as: UTF8.self)
    header["__metadata__"] = meta
    return "config \(field) = \(value)"
  case 6:
    var training = try! JSONSerialization.jsonObject(with: Data(meta["training"]!.utf8)) as! [String: Any]
    let field = training.keys.sorted()[below(training.count)]
    training[field] = extremes[below(extremes.count)]
    meta["training"] = String(decoding: try! JSONSerialization.data(withJSONObject: training), as: UTF8.self)
    header["__metadata__"] = meta
    return "training \(field) changed"
  case 7:
    // The word list of the file's kind: a language model's or a classifier's vocabulary, a
    // classifier's classes, a sequence model's source or target tokens.
    let lists = ["vocabulary", "classes", "sourceVocabulary", "targetVocabulary"].filter { meta[$0] != nil }
    let list = lists.count == 1 ? lists[0] : lists[below(lists.count)]
    var words = try! JSONSerialization.jsonObject(with: Data(meta[list]!.utf8)) as! [String]
    switch below(3) {
    case 0: words.removeLast()
    case 1: words[1] = words[0]
    default: words.append("zebra")
    }
    meta[list] = String(decoding: try! JSONSerialization.data(withJSONObject: words), as: UTF8.self)
    header["__metadata__"] = meta
    return "\(list) edited"
  default:
    let field = ["state", "format", "version", "config"][below(4)]
    meta[field] = ["", "{", "[]", "2"][below(4)]
    header["__metadata__"] = meta
    return "metadata \(field) garbled"
  }
}

/// A second, deliberately simple reading of the format, independent of the reader under test:
/// the header parses, the configuration gives every parameter tensor with its PyTorch shape
/// (names and shapes written out here from the documentation), nothing else is present but the
/// zero bias_hh of one-bias cells and the carried state, and the tensors tile the data section.
/// Returns what is wrong, or nil.
func formatCheck(_ bytes: [UInt8]) -> String? {
  guard bytes.count >= 8 else { return "short" }
  let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
  guard n >= 0, n <= bytes.count - 8,
    let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any],
    let meta = header["__metadata__"] as? [String: String],
    let config = meta["config"].flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }),
    let v = config["vocabularySize"] as? Int, let d = config["embeddingSize"] as? Int,
    let h = config["hiddenSize"] as? Int, let layers = config["layers"] as? Int, let tied = config["tied"] as? Bool,
    let training = meta["training"].flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    ),
    let batch = training["batchSize"] as? Int,
    let words = meta["vocabulary"].flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] })
  else { return "header unreadable" }
  guard v >= 2, d >= 1, h >= 1, layers >= 1, layers < 100, v * d < bytes.count else { return "sizes" }
  guard words.count == v, Set(words).count == v else { return "vocabulary" }
  let cell = config["cell"] as? String ?? "lstm"
  guard let gates = ["lstm": 4, "gru": 3, "rnn": 1][cell] else { return "cell" }
  var expected: [String: [Int]] = ["encoder.weight": [v, d]]
  var parameters = v * d
  if let cutoffs = config["adaptiveCutoffs"] as? [Int] {
    // PyTorch's AdaptiveLogSoftmaxWithLoss: head (c1 + k, H) or, tied, only its k cluster rows;
    // tail i: (⌊H / divⁱ⁺¹⌋, H) then (cluster size, ⌊H / divⁱ⁺¹⌋).
    let div = config["adaptiveDivision"] as? Double ?? 4
    guard cutoffs.count >= 1, cutoffs.count < 10, cutoffs.first! >= 1, cutoffs.last! < v,
      zip(cutoffs, cutoffs.dropFirst()).allSatisfy({ $0 < $1 }), div >= 1, div < 1000
    else { return "cutoffs" }
    let k = cutoffs.count
    let head = tied ? ["decoder.head_clusters.weight": [k, h]] : ["decoder.head.weight": [cutoffs[0] + k, h]]
    expected.merge(head) { a, _ in a }
    expected["decoder.head.bias"] = [cutoffs[0] + k]
    parameters += (tied ? k * h : (cutoffs[0] + k) * h) + cutoffs[0] + k
    let bounds = cutoffs + [v]
    for i in 0..<k {
      var p = Double(h)
      for _ in 0...i { p /= div }
      let projection = Int(p.rounded(.down))
      guard projection >= 1 else { return "projection" }
      expected["decoder.tail.\(i).0.weight"] = [projection, h]
      expected["decoder.tail.\(i).1.weight"] = [bounds[i + 1] - bounds[i], projection]
      parameters += projection * h + (bounds[i + 1] - bounds[i]) * projection
    }
  } else {
    expected["decoder.bias"] = [v]
    if !tied { expected["decoder.weight"] = [v, h] }
    parameters += v + (tied ? 0 : v * h)
  }
  for l in 0..<layers {
    expected["rnn.weight_ih_l\(l)"] = [gates * h, l == 0 ? d : h]
    expected["rnn.weight_hh_l\(l)"] = [gates * h, h]
    expected["rnn.bias_ih_l\(l)"] = [gates * h]
    expected["rnn.bias_hh_l\(l)"] = [gates * h]
  }
  let states = cell == "lstm" ? ["h", "c"] : ["h"]
  // The optimizer's moments, each of the parameter count (one bias per layer unless GRU).
  for l in 0..<layers { parameters += gates * h * ((l == 0 ? d : h) + h + (cell == "gru" ? 2 : 1)) }
  let optimizer = training["optimizer"] as? String ?? "sgd"
  guard let moments = ["sgd": [], "adam": ["m", "v"], "rmsprop": ["v"]][optimizer] else { return "optimizer" }
  for m in moments { expected["optimizer.\(m)"] = [parameters] }
  let state = meta["state"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
  if state?["averagedSteps"] is Int { expected["asgd.average"] = [parameters] }
  var ranges: [(Int, Int)] = []
  for (name, value) in header where name != "__metadata__" {
    guard let e = value as? [String: Any], e["dtype"] as? String == "F32", let shape = e["shape"] as? [Int],
      let o = e["data_offsets"] as? [Int], o.count == 2
    else { return "\(name) entry" }
    let isState = states.contains { s in (0..<layers).contains { name == "state.\(s)_l\($0)" } }
    guard shape == expected[name] ?? (isState ? [batch, h] : nil) else { return "\(name) shape \(shape)" }
    guard o[1] - o[0] == 4 * shape.reduce(1, *) else { return "\(name) size" }
    ranges.append((o[0], o[1]))
  }
  for name in expected.keys where header[name] == nil && !name.hasPrefix("rnn.bias_hh") && !name.hasPrefix("optimizer.")
  {
    return "\(name) missing"
  }
  var position = 0
  for (begin, end) in ranges.sorted(by: { $0 < $1 }) {
    guard begin == position else { return "ranges do not tile" }
    position = end
  }
  return position == bytes.count - 8 - n ? nil : "data size"
}
