import Foundation
import Testing

@testable import RNNLM

/// Inputs too large for the machine, and damaged checkpoints: one clear error, never a trap.
@Suite struct RobustnessTests {
  /// The estimate that guards every model's allocation is close to what a model really holds:
  /// its parameters and gradients, and its layers' buffers.
  @Test(arguments: RecurrentCell.allCases)
  func memoryEstimateMatchesTheBuffers(cell: RecurrentCell) throws {
    for (layers, tied) in [(1, false), (3, true)] {
      let config = ModelConfig(
        vocabularySize: 300, embeddingSize: 24, hiddenSize: 24, layers: layers, cell: cell, tied: tied, dropout: 0.3)
      var g = SeededGenerator(seed: 1)
      let model = try LanguageModel<Double>(config: config, batchSize: 6, maxSteps: 7, generator: &g)
      evaluateOneBatch(model)
      let held = 8 * Double(2 * model.parameters.count + model.scratch.elementCount + model.wordProjectionElements)
      let estimate = config.bytesNeeded(batchSize: 6, steps: 7, scalarBytes: 8)
      #expect(abs(estimate / held - 1) < 0.1, "\(cell) \(layers) layers: estimate \(estimate), held \(held)")
    }
  }

  /// A model larger than the machine is refused before anything is allocated, naming its sizes,
  /// the memory it needs and the machine's.
  @Test func modelLargerThanTheMachineIsRefused() throws {
    let available = Memory.availableBytes
    #expect(available > 1_000_000)
    // D so large that the embedding alone needs twice the machine's memory.
    let d = Int(2 * available / 4 / 1000) + 1
    let config = ModelConfig(vocabularySize: 1000, embeddingSize: d, hiddenSize: 10)
    var g = SeededGenerator(seed: 1)
    let error = #expect(throws: AllocationError.self) {
      _ = try LanguageModel<Float>(config: config, batchSize: 20, maxSteps: 35, generator: &g)
    }
    let text = error?.description ?? ""
    #expect(
      text.contains("D \(d)") && text.contains("needs about") && text.contains(Memory.describe(available)), "\(text)")
    // Batches of more rows than the kernels index.
    let small = ModelConfig(vocabularySize: 10, embeddingSize: 4, hiddenSize: 4)
    #expect(throws: AllocationError.self) { try small.checkMemory(batchSize: 1 << 20, steps: 1 << 12) }
    // Sizes beyond what the kernels' 32-bit sizes can hold are refused by validation.
    #expect(throws: ConfigurationError.self) {
      try ModelConfig(vocabularySize: 10, embeddingSize: 4, hiddenSize: 1 << 30).validate()
    }
  }

  /// Files named by what is wrong with them, in the file system's words, not Foundation's.
  @Test func fileProblemsInPlainWords() throws {
    let dir = try DataTests.temporaryDirectory()
    let file = dir + "/file.txt"
    try "words\n".write(toFile: file, atomically: true, encoding: .utf8)
    #expect(fileProblem(dir) == "is a directory")
    #expect(fileProblem(file) == nil)
    #expect(fileProblem(dir + "/missing") == "no such file or directory")
    #expect(fileProblem(file, expectDirectory: true) == "exists and is a file, not a directory")
    #expect(fileProblem(file + "/below") == "not a directory")
    #expect(throws: DataError.unreadable(path: dir, reason: "is a directory")) { try Corpus.readText(at: dir) }
    #expect(throws: CheckpointError.io(path: dir, reason: "is a directory")) { try Checkpoint.read(from: dir) }
    #expect(throws: CheckpointError.io(path: dir, reason: "is a directory")) { try CheckpointSummary(contentsOf: dir) }
    // A run directory that is a file.
    #expect(throws: FileError(path: file, reason: "exists and is a file, not a run directory")) {
      try MetricsWriter(directory: file)
    }
  }

  /// A run killed while saving leaves `.NAME.tmp-PID`; the next run in that directory removes it
  /// unless its process still runs.
  @Test func staleTemporaryFilesAreRemoved() throws {
    let dir = try DataTests.temporaryDirectory()
    // No process has this id (it is above every pid_max Linux allows).
    let stale = dir + "/.last.safetensors.tmp-2147483646"
    let running = dir + "/.last.safetensors.tmp-1"  // init runs as long as the machine does
    let own = dir + "/.best.safetensors.tmp-\(getpid())"
    let other = dir + "/notes.tmp-5"
    for path in [stale, running, own, other] { #expect(FileManager.default.createFile(atPath: path, contents: Data())) }
    let data = try RunTests.dataset()
    _ = try RunTests.trainer(data, epochs: 1).run(data, limits: RunLimits(maxBatches: 2, saveDirectory: dir))
    #expect(!FileManager.default.fileExists(atPath: stale))
    for path in [running, own, other] { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }
    #expect(FileManager.default.fileExists(atPath: dir + "/last.safetensors"))
  }

  /// Users' corpora whose validation or test words are missing from training: an error naming
  /// the word and line, or with `mapUnknown` read as `<unk>` and counted.
  @Test func unknownWordsOfUsersCorpora() throws {
    let train = (path: "train.txt", text: "a b c\nb c a\n")
    let valid = (path: "valid.txt", text: "a x b\ny y\n")
    let test = (path: "test.txt", text: "c b a\n")
    #expect(throws: DataError.unknownWord(word: "x", path: "valid.txt", line: 1)) {
      try Dataset(train: train, valid: valid, test: test)
    }
    let mapped = try Dataset(train: train, valid: valid, test: test, mapUnknown: true)
    #expect(mapped.outOfVocabulary.valid == 3 && mapped.outOfVocabulary.test == 0)
    // The training text lacks <unk>: it is added as the last word, and the unknown words read as it.
    #expect(mapped.vocabulary.words == ["a", "b", "c", "<eos>", "<unk>"])
    #expect(mapped.valid == [0, 4, 1, 3, 4, 4, 3])
    // With <unk> in the training text, the vocabulary is the one the text gives.
    let withUnk = try Dataset(
      train: (path: "train.txt", text: "a <unk> b\n"), valid: valid, test: test, mapUnknown: true)
    #expect(withUnk.vocabulary.words == ["a", "<unk>", "b", "<eos>"])
    #expect(withUnk.outOfVocabulary.valid == 3 && withUnk.outOfVocabulary.test == 1)
  }

  /// A corpus is called PTB only when it has PTB's files and their checksums were verified.
  @Test func onlyPTBIsCalledPTB() throws {
    let dir = try DataTests.temporaryDirectory()
    for name in ["train.txt", "valid.txt", "test.txt"] {
      try "a b\n".write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
    }
    #expect(PTB.describe(directory: dir, verified: true) == "the corpus in \(dir) (train.txt, valid.txt, test.txt)")
    for name in ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"] {
      try "a b\n".write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
    }
    #expect(PTB.describe(directory: dir, verified: false) == "ptb.*.txt from \(dir) (checksums not verified)")
    #expect(PTB.describe(directory: dir, verified: true) == "PTB from \(dir)")
    #expect(throws: DataError.self) { try PTB.load(directory: dir, verify: true) }
  }
}
