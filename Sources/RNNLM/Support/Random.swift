import Foundation

/// The run's one source of randomness: xoshiro256** seeded through SplitMix64.
///
/// Weight initialisation, dropout masks and sampling all draw from the generator owned by
/// the run, so the same seed reproduces a run exactly. Its whole state is ``state``, which
/// is what a checkpoint stores.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  /// The four 64-bit words of xoshiro256** state.
  public var state: (UInt64, UInt64, UInt64, UInt64)

  /// A generator whose stream is determined by `seed`.
  public init(seed: UInt64) {
    var s = seed
    func splitMix() -> UInt64 {
      s &+= 0x9E37_79B9_7F4A_7C15
      var z = s
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    state = (splitMix(), splitMix(), splitMix(), splitMix())
  }

  /// The next 64 random bits.
  public mutating func next() -> UInt64 {
    let result = rotl(state.1 &* 5, 7) &* 9
    let t = state.1 << 17
    state.2 ^= state.0
    state.3 ^= state.1
    state.1 ^= state.2
    state.0 ^= state.3
    state.2 ^= t
    state.3 = rotl(state.3, 45)
    return result
  }

  /// Fills `count` uniform 32-bit words, two from each 64-bit draw, low half first (the
  /// dropout masks' randomness).
  package mutating func fill(_ words: UnsafeMutablePointer<UInt32>, count: Int) {
    var i = 0
    while i < count {
      let draw = next()
      words[i] = UInt32(truncatingIfNeeded: draw)
      if i + 1 < count { words[i + 1] = UInt32(truncatingIfNeeded: draw >> 32) }
      i += 2
    }
  }

  /// The word below which a uniform 32-bit word drops an element with probability `rate`:
  /// an element is kept when its word is at least rate · 2³².
  package static func dropThreshold(_ rate: Double) -> UInt32 {
    UInt32(min(rate * 4_294_967_296.0, 4_294_967_295.0))
  }

  /// A uniform double in [0, 1) with 53 random bits.
  public mutating func nextUniform() -> Double {
    Double(next() >> 11) * 0x1.0p-53
  }

  /// A standard normal sample (Box–Muller; one of the pair is used, so the stream is simple).
  public mutating func nextNormal() -> Double {
    let u1 = 1.0 - nextUniform()  // (0, 1]: log is finite
    let u2 = nextUniform()
    return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
  }

  @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
    (x << k) | (x >> (64 - k))
  }
}

extension SeededGenerator {
  /// The generator's state as four decimal strings, as checkpoints store it (JSON numbers cannot
  /// hold 64 bits).
  public var savedWords: [String] { [state.0, state.1, state.2, state.3].map { String($0) } }

  /// The generator whose state ``savedWords`` gave, or nil when the strings are not four 64-bit
  /// numbers.
  public init?(savedWords words: [String]) {
    let values = words.compactMap(UInt64.init)
    guard words.count == 4, values.count == 4 else { return nil }
    self.init(seed: 0)
    state = (values[0], values[1], values[2], values[3])
  }
}
