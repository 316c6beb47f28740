import Foundation

/// The safetensors container every checkpoint of this toolkit uses (language models and text
/// classifiers alike): an 8-byte little-endian header length, a JSON header of string metadata
/// (`__metadata__`) and tensor entries, then the raw little-endian float32 tensors one after
/// another. PyTorch's `safetensors` package reads these files.
package enum SafeTensors {
  /// One tensor to write: its name, row-major shape and values, read in place.
  package struct Source {
    package let name: String
    package let shape: [Int]
    package let values: UnsafeBufferPointer<Float>

    package init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
      precondition(shape.reduce(1, *) == values.count, "tensor \(name): \(values.count) values for shape \(shape)")
      self.name = name
      self.shape = shape
      self.values = values
    }
  }

  /// One tensor's entry in a header: shape and byte range in the data section.
  package struct Entry {
    package let shape: [Int]
    package let begin: Int
    package let end: Int
  }

  /// A parsed header whose tensors tile the data section exactly.
  package struct Header {
    /// The `__metadata__` strings.
    package let metadata: [String: String]
    /// Every tensor's entry by name.
    package let tensors: [String: Entry]
    /// Offset of the data section in the file.
    package let dataStart: Int
    /// The file's size in bytes.
    package let fileSize: Int
    /// Bytes in the data section.
    package var dataSize: Int { fileSize - dataStart }
  }

  /// Writes the file atomically: to a temporary file in the same directory, flushed to disk,
  /// then renamed over `path`, so a run killed while saving leaves the old file intact.
  package static func write(to path: String, metadata: [String: String], tensors: [Source]) throws {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
        throw CheckpointError.io(path: path, reason: "cannot create \(temporary.path)")
      }
      let handle = try FileHandle(forWritingTo: temporary)
      defer { try? handle.close() }
      let fd = handle.fileDescriptor
      try encode(metadata: metadata, tensors: tensors) { bytes in
        var done = 0
        while done < bytes.count {
          let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
          if n < 0 && errno == EINTR { continue }
          if n <= 0 { throw CheckpointError.io(path: path, reason: String(cString: strerror(errno))) }
          done += n
        }
      }
      try handle.synchronize()
      if rename(temporary.path, url.path) != 0 {
        throw CheckpointError.io(path: path, reason: "rename failed: \(String(cString: strerror(errno)))")
      }
    } catch let error as CheckpointError {
      try? FileManager.default.removeItem(at: temporary)
      throw error
    } catch {
      try? FileManager.default.removeItem(at: temporary)
      let directory = url.deletingLastPathComponent().path
      throw CheckpointError.io(
        path: path, reason: "\(directory) \(fileFailure(directory, error: error, expectDirectory: true))")
    }
  }

  /// Produces the file's bytes in order, in pieces: header length, JSON header, then each
  /// tensor read in place (little-endian float32 is the memory layout here).
  package static func encode(
    metadata: [String: String], tensors: [Source], to sink: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    var header: [String: Any] = ["__metadata__": metadata]
    var offset = 0
    for t in tensors {
      header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.values.count]]
      offset += 4 * t.values.count
    }
    var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    // Pad with spaces so the tensor data starts 8-byte aligned, as the format recommends.
    while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
    try withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { try sink($0) }
    try headerBytes.withUnsafeBytes { try sink($0) }
    #if !_endian(little)
      #error("checkpoints are written from memory as little-endian float32")
    #endif
    for t in tensors { try sink(UnsafeRawBufferPointer(t.values)) }
  }

  /// The whole file's bytes; a missing or unreadable file is a ``CheckpointError/io(path:reason:)``
  /// naming what is wrong.
  package static func readBytes(of path: String) throws -> [UInt8] {
    do { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
      throw CheckpointError.io(path: path, reason: fileFailure(path, error: error))
    }
  }

  /// The file's first bytes: at least the header when the length field is plausible, without
  /// reading the tensors; and the file's size.
  package static func readPrefix(of path: String) throws -> (prefix: [UInt8], fileSize: Int) {
    if let problem = fileProblem(path) { throw CheckpointError.io(path: path, reason: problem) }
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw CheckpointError.io(path: path, reason: "cannot be opened")
    }
    defer { try? handle.close() }
    let size = Int((try? handle.seekToEnd()) ?? 0)
    try? handle.seek(toOffset: 0)
    var prefix = [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
    if prefix.count == 8 {
      let length = prefix.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
      if length <= UInt64(max(size - 8, 0)) {
        prefix += [UInt8]((try? handle.read(upToCount: Int(length))) ?? Data())
      }
    }
    return (prefix, size)
  }

  /// The toolkit's checkpoint kinds by format tag: what each is, and what reads it.
  package static let kinds: [String: (name: String, hint: String)] = [
    "rnnlm-checkpoint": ("language model", "use it with rnnlm evaluate or rnnlm generate"),
    "rnnlm-classifier": ("text classifier", "use it with rnnlm classify"),
    "rnnlm-seq2seq": ("sequence-to-sequence model", "use it with rnnlm translate"),
  ]

  /// Parses the header from the file's first bytes (`prefix`, at least the header) of a file of
  /// `fileSize` bytes, and checks that it has `format` and `version` in its metadata and that
  /// every entry is a float32 tensor whose byte ranges tile the data section exactly (no
  /// overlap, no gap, nothing after the last), as the safetensors format requires.
  package static func parseHeader(
    _ prefix: [UInt8], fileSize: Int, path: String, format: String, version: String
  ) throws -> Header {
    guard prefix.count >= 8, fileSize >= 8 else {
      throw CheckpointError.notACheckpoint(path: path, reason: "shorter than 8 bytes")
    }
    let headerLength = prefix[0..<8].enumerated().reduce(UInt64(0)) {
      $0 | UInt64($1.element) << (8 * UInt64($1.offset))
    }
    guard headerLength <= UInt64(fileSize - 8) else {
      throw headerLength < 100_000_000
        ? CheckpointError.truncated(path: path)
        : CheckpointError.notACheckpoint(path: path, reason: "implausible header length \(headerLength)")
    }
    let dataStart = 8 + Int(headerLength)
    guard prefix.count >= dataStart,
      let header = try? JSONSerialization.jsonObject(with: Data(prefix[8..<dataStart])) as? [String: Any],
      let meta = header["__metadata__"] as? [String: String]
    else { throw CheckpointError.notACheckpoint(path: path, reason: "no JSON header with __metadata__") }
    guard meta["format"] == format else {
      if let found = meta["format"].flatMap({ kinds[$0] }), let expected = kinds[format] {
        throw CheckpointError.wrongKind(path: path, found: found.name, expected: expected.name, hint: found.hint)
      }
      throw CheckpointError.notACheckpoint(path: path, reason: "format tag is \(meta["format"] ?? "missing")")
    }
    guard meta["version"] == version else {
      throw CheckpointError.incompatibleVersion(path: path, found: meta["version"] ?? "missing")
    }

    // Every entry is a float32 tensor with a shape and a byte range of 4 bytes per element.
    var tensors: [String: Entry] = [:]
    for (name, value) in header where name != "__metadata__" {
      guard let entry = value as? [String: Any], entry["dtype"] as? String == "F32",
        let shape = entry["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }),
        let offsets = entry["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1]
      else {
        throw CheckpointError.notACheckpoint(
          path: path, reason: "tensor \(name) is not a float32 entry with a shape and data_offsets")
      }
      let elements = shape.reduce(1.0) { $0 * Double($1) }
      guard Double(offsets[1] - offsets[0]) == 4 * elements else {
        throw CheckpointError.mismatch(
          path: path, reason: "tensor \(name) has \(offsets[1] - offsets[0]) bytes for shape \(shape)")
      }
      tensors[name] = Entry(shape: shape, begin: offsets[0], end: offsets[1])
    }

    // The byte ranges follow one another without overlap or gap and cover the data section
    // exactly, so no two tensors share bytes.
    let dataSize = fileSize - dataStart
    let ordered = tensors.sorted { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }
    // Overlaps first: a tensor moved onto another's bytes also leaves a gap where it was, and
    // the overlap is what names the damage.
    var end = 0
    for (name, t) in ordered {
      if t.begin < end {
        throw CheckpointError.mismatch(path: path, reason: "tensor \(name)'s bytes overlap another tensor's")
      }
      end = max(end, t.end)
    }
    var position = 0
    for (name, t) in ordered {
      if t.begin > position {
        throw CheckpointError.mismatch(
          path: path, reason: "the data section has \(t.begin - position) unused bytes before tensor \(name)")
      }
      position = t.end
    }
    if position > dataSize { throw CheckpointError.truncated(path: path) }
    if position < dataSize {
      throw CheckpointError.mismatch(
        path: path, reason: "the data section has \(dataSize - position) bytes after its last tensor")
    }
    return Header(metadata: meta, tensors: tensors, dataStart: dataStart, fileSize: fileSize)
  }

  /// Decodes a JSON metadata field of `header`.
  package static func field<D: Decodable>(_ name: String, _ type: D.Type, in header: Header, path: String) throws -> D {
    guard let text = header.metadata[name], let value = try? JSONDecoder().decode(D.self, from: Data(text.utf8)) else {
      throw CheckpointError.notACheckpoint(path: path, reason: "metadata field '\(name)' is missing or malformed")
    }
    return value
  }

  /// Encodes `value` as a JSON metadata field, keys sorted.
  package static func json<E: Encodable>(_ value: E) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }

  /// Checks that the header's tensors are exactly `expected` (name → shape): none missing among
  /// `required`, none unknown, every shape as expected. `model` names the model in errors.
  package static func checkTensors(
    _ header: Header, expected: [String: [Int]], required: Set<String>, model: String, path: String
  ) throws {
    for name in required.sorted() where header.tensors[name] == nil {
      throw CheckpointError.mismatch(path: path, reason: "tensor \(name) is missing")
    }
    for (name, t) in header.tensors.sorted(by: { $0.key < $1.key }) {
      guard let shape = expected[name] else {
        throw CheckpointError.mismatch(path: path, reason: "tensor \(name) does not belong to \(model)")
      }
      if t.shape != shape {
        throw CheckpointError.mismatch(path: path, reason: "tensor \(name) has shape \(t.shape), expected \(shape)")
      }
    }
  }

  /// The values of tensor `name` (its entry checked by ``parseHeader(_:fileSize:path:format:version:)``)
  /// in the file's `bytes`, or nil when it is absent.
  package static func values(_ name: String, in header: Header, bytes: [UInt8]) -> [Float]? {
    guard let t = header.tensors[name] else { return nil }
    var values = [Float](repeating: 0, count: (t.end - t.begin) / 4)
    values.withUnsafeMutableBytes { dst in
      bytes.withUnsafeBytes { src in
        dst.copyMemory(
          from: UnsafeRawBufferPointer(rebasing: src[(header.dataStart + t.begin)..<(header.dataStart + t.end)]))
      }
    }
    return values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
  }

  /// The format tag in a file's metadata, or nil when the file is not a readable safetensors
  /// file (to tell which kind of checkpoint a path holds).
  package static func formatTag(of path: String) -> String? {
    guard let (prefix, size) = try? readPrefix(of: path), prefix.count >= 8 else { return nil }
    let length = prefix[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard length <= UInt64(size - 8), prefix.count >= 8 + Int(length),
      let header = try? JSONSerialization.jsonObject(with: Data(prefix[8..<(8 + Int(length))])) as? [String: Any],
      let meta = header["__metadata__"] as? [String: String]
    else { return nil }
    return meta["format"]
  }
}

extension RecurrentCell {
  /// The recurrent bias PyTorch's module has beside `name` when this cell keeps one bias: the
  /// `….bias_hh_l{k}` for a `….bias_ih_l{k}` (`rnn.bias_ih_l0`, `encoder.rnn.bias_ih_l1`) of the
  /// LSTM or the RNN, else nil.
  package func zeroRecurrentBias(besides name: String) -> String? {
    guard !hasRecurrentBias, let range = name.range(of: "bias_ih_l"),
      range.lowerBound == name.startIndex || name[name.index(before: range.lowerBound)] == "."
    else { return nil }
    return name.replacingCharacters(in: range, with: "bias_hh_l")
  }

  /// The tensors of `views` over `values` as PyTorch's modules name them: each view, and beside
  /// each bias of a cell with one bias a `bias_hh` read from `zeros` (as long as the largest bias).
  package func pytorchTensors(
    views: [ParameterView], values: UnsafeBufferPointer<Float>, zeros: UnsafeBufferPointer<Float>
  ) -> [SafeTensors.Source] {
    var tensors: [SafeTensors.Source] = []
    for view in views {
      tensors.append(
        SafeTensors.Source(
          name: view.name, shape: view.shape,
          values: UnsafeBufferPointer(rebasing: values[view.offset..<(view.offset + view.count)])))
      if let zero = zeroRecurrentBias(besides: view.name) {
        tensors.append(
          SafeTensors.Source(
            name: zero, shape: view.shape, values: UnsafeBufferPointer(rebasing: zeros[0..<view.count])))
      }
    }
    return tensors
  }

  /// The names and shapes ``pytorchTensors(views:values:zeros:)`` writes for `layout`.
  package func pytorchShapes(_ layout: [(name: String, shape: [Int])]) -> [String: [Int]] {
    var shapes: [String: [Int]] = [:]
    for (name, shape) in layout {
      shapes[name] = shape
      if let zero = zeroRecurrentBias(besides: name) { shapes[zero] = shape }
    }
    return shapes
  }

  /// The parameters of `layout`, in order, from `values(name)`, each `bias_hh` of a cell with one
  /// bias added into its `bias_ih` (PyTorch may have trained it).
  package func parameters(_ layout: [(name: String, shape: [Int])], values: (String) -> [Float]?) -> [Float] {
    var parameters: [Float] = []
    for (name, _) in layout {
      var p = values(name)!
      if let zero = zeroRecurrentBias(besides: name), let hh = values(zero) {
        for i in p.indices { p[i] += hh[i] }
      }
      parameters += p
    }
    return parameters
  }
}

extension SafeTensors {
  /// Writes a model checkpoint atomically: the parameters of `layout` read in place from
  /// `parameters` under PyTorch's names (``RecurrentCell/pytorchTensors(views:values:zeros:)``),
  /// then the optimizer's state tensors, each of the parameters' size.
  package static func writeModel(
    to path: String, metadata: [String: String], layout: [(name: String, shape: [Int])], cell: RecurrentCell,
    parameters: UnsafeBufferPointer<Float>, optimizerNames: [String], optimizerState: [UnsafeBufferPointer<Float>]
  ) throws {
    let views = ParameterStore<Float>.views(for: layout)
    let zeros = [Float](repeating: 0, count: views.map(\.count).max() ?? 0)
    try zeros.withUnsafeBufferPointer { z in
      var tensors = cell.pytorchTensors(views: views, values: parameters, zeros: z)
      for (name, values) in zip(optimizerNames, optimizerState) {
        tensors.append(Source(name: name, shape: [values.count], values: values))
      }
      try write(to: path, metadata: metadata, tensors: tensors)
    }
  }

  /// Checks that `file` holds exactly the tensors ``writeModel(to:metadata:layout:cell:parameters:optimizerNames:optimizerState:)``
  /// writes for `layout`, with the optimizer's (and NT-ASGD's average once `averaging`) all or
  /// none; `model` names the model in errors.
  package static func checkModelTensors(
    _ file: Header, layout: [(name: String, shape: [Int])], cell: RecurrentCell, optimizer: OptimizerKind,
    averaging: Bool, model: String, path: String
  ) throws {
    var expected = cell.pytorchShapes(layout)
    let count = layout.reduce(0) { $0 + $1.shape.reduce(1, *) }
    let names = optimizer.savedTensorNames(averaging: averaging)
    for name in names { expected[name] = [count] }
    try checkTensors(file, expected: expected, required: Set(layout.map(\.name)), model: model, path: path)
    let present = names.filter { file.tensors[$0] != nil }.count
    if present != 0 && present != names.count {
      throw CheckpointError.mismatch(
        path: path, reason: "it holds \(present) of the \(names.count) \(optimizer) state tensors")
    }
  }
}
