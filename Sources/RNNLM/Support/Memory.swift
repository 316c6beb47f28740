import Foundation

/// The memory a model needs, checked against the machine's before anything is allocated, so
/// that a size too large for the machine is one clear error instead of a failed allocation.
public enum Memory {
  /// Physical memory in bytes, or the cgroup's limit (`/sys/fs/cgroup/memory.max`) when lower.
  public static var availableBytes: Double {
    let pages = Double(max(sysconf(Int32(_SC_PHYS_PAGES)), 0))
    let pageSize = Double(max(sysconf(Int32(_SC_PAGESIZE)), 0))
    var bytes = pages * pageSize
    if let text = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
      let limit = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0
    {
      bytes = bytes > 0 ? min(bytes, limit) : limit
    }
    return bytes
  }

  /// `bytes` in binary units, e.g. "23.4 GiB".
  public static func describe(_ bytes: Double) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = bytes
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    return unit == 0 ? String(format: "%.0f bytes", value) : String(format: "%.1f %@", value, units[unit])
  }
}

/// Memory the machine cannot give: a model larger than its memory (the sizes, the bytes needed,
/// the bytes it has), or a buffer the system refused.
public struct AllocationError: Error, CustomStringConvertible, Equatable {
  /// One line for the user.
  public let description: String
  /// An error saying `description`.
  public init(_ description: String) { self.description = description }
}

extension ModelConfig {
  /// Bytes a model of this configuration needs for passes of `batchSize` × `steps` tokens with
  /// `scalarBytes`-byte numbers: parameters and their gradients, and the layers' buffers (the
  /// embedding's output, each recurrent layer's gate pre-activations, states and input
  /// gradient, the dropout masks, the output layer's scores and input gradient), and the table of
  /// first-layer input projections its evaluation passes keep (at most 256 MiB).
  ///
  /// Counted in Double from the dominant terms, so absurd sizes cannot overflow; the buffers a
  /// model really allocates are within a few per cent of it.
  public func bytesNeeded(batchSize: Int, steps: Int, scalarBytes: Int = 4) -> Double {
    let (v, d, h, l) = (Double(vocabularySize), Double(embeddingSize), Double(hiddenSize), Double(layers))
    let g = Double(cell.gateCount)
    var output = (tied ? 0 : v * h) + v
    // Scores per row: V for the full softmax, the head's c₁ + k for the adaptive one (whose tail
    // chunks hold at most 2²¹ scores, whatever the batch).
    var scoresPerRow = v
    var tailScratch = 0.0
    if let a = adaptiveShape {
      let (hs, k) = (Double(a.headSize), Double(a.clusters))
      output = (tied ? k * h : hs * h) + hs
      for i in 0..<a.clusters { output += Double(a.projections[i]) * (h + Double(a.clusterSize(i))) }
      scoresPerRow = hs
      tailScratch = Double(a.tailScratchElements(inputSize: hiddenSize, maxRows: min(batchSize * steps, 1 << 30)))
    }
    let parameters = v * d + g * h * (d + h + 2) + (l - 1) * g * h * (2 * h + 2) + output
    let rows = Double(batchSize) * Double(steps)
    // Per row: embedding output and its dropout mask (2D); per layer gates (G·H), states and
    // their copies (≈ 3H), input gradient (D or H) and dropout mask (H); scores and dX (H).
    let perRow = 2 * d + l * (g * h + 4 * h) + d + (l - 1) * h + scoresPerRow + h
    // Weight drop keeps a masked copy of every W_hh and its mask.
    let weightDropCopies = weightDrop > 0 ? 2 * l * g * h * h : 0
    let gh = cell.gateCount * hiddenSize
    let projectionTable =
      Double(wordProjectionCapacity(vocabularySize: vocabularySize, width: gh, scalarBytes: scalarBytes))
      * Double(gh) + rows * d
    return Double(scalarBytes)
      * (2 * parameters + rows * perRow + weightDropCopies + tailScratch + projectionTable)
  }

  /// Throws an ``AllocationError`` naming the sizes, the bytes needed and the machine's
  /// memory when ``bytesNeeded(batchSize:steps:scalarBytes:)`` exceeds ``Memory/availableBytes``,
  /// or when a batch has more rows than the kernels can index.
  public func checkMemory(batchSize: Int, steps: Int, scalarBytes: Int = 4) throws {
    let rows = Double(batchSize) * Double(steps)
    let sizes =
      "V \(vocabularySize), D \(embeddingSize), H \(hiddenSize), \(layers) \(cell.rawValue.uppercased()) "
      + "layer\(layers == 1 ? "" : "s"), batches of \(batchSize) × \(steps)"
    guard rows <= Double(Int32.max) else {
      throw AllocationError("batches of \(batchSize) × \(steps) tokens: the kernels index at most 2³¹ − 1 rows")
    }
    let needed = bytesNeeded(batchSize: batchSize, steps: steps, scalarBytes: scalarBytes)
    let available = Memory.availableBytes
    if available > 0 && needed > available {
      throw AllocationError(
        "a model of \(sizes) needs about \(Memory.describe(needed)) of memory; this machine has "
          + Memory.describe(available))
    }
  }
}
