import ArgumentParser
import Foundation
import RNNLM

extension ParsableCommand {
  /// Parses the command line and runs the command, like `main()`, except that every failure
  /// is ONE line on standard error — `Error: ` and what is wrong, with a pointer to `--help` for
  /// usage errors — and a status of 64 for usage errors or 1 for failures; `--help` still prints
  /// the full help. (ArgumentParser's own `main()` follows a usage error with the usage text.)
  ///
  /// Under mpirun every process runs the command; rank 0 speaks for them (a failure one other
  /// process alone met is reported by that process, naming its rank), and MPI ends with the run.
  public static func mainWithOneLineErrors(_ arguments: [String]? = nil) -> Never {
    // MPI starts before the flags are read, so that a usage error, the same on every process,
    // is reported once.
    var group = ProcessGroup.single
    if ProcessGroup.launchedByMPI {
      do { group = try ProcessGroup.world() } catch {
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        Foundation.exit(1)
      }
      if !group.isRoot { muteConsole() }
    }
    do {
      var command = try parseAsRoot(arguments)
      try command.run()
      group.finish()
      Foundation.exit(0)
    } catch let code as ExitCode {
      // The command has reported the failure itself.
      Foundation.exit(code.rawValue)
    } catch {
      var error = error
      var prefix = ""
      var speaks = group.isRoot
      // Whether every process is here: then they part after rank 0 has spoken.
      var together = true
      switch error {
      case is QuietFailure: speaks = false
      case let shared as SharedFailure: error = shared.error
      case let failure as RankFailure:
        (error, prefix, speaks) = (failure.error, "rank \(failure.rank) of \(failure.size): ", true)
      default:
        // A failure this process met alone (rank 0 writing a checkpoint, say): it reports it,
        // naming its rank unless it is rank 0, and mpirun ends the others.
        // A usage error is every process's.
        together = exitCode(for: error).rawValue == 64
        if !together && !group.isRoot { (prefix, speaks) = ("rank \(group.rank) of \(group.size): ", true) }
      }
      let code = exitCode(for: error)
      if code == .success {
        if speaks { print(fullMessage(for: error)) }
        group.finish()
        Foundation.exit(0)
      }
      var message = message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
      if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
      message = message.replacingOccurrences(of: "\n", with: " ")
      if code.rawValue == 64 { message += " (see \(configuration.commandName ?? "the command") --help)" }
      if speaks {
        group.silenceTermination()
        FileHandle.standardError.write(Data("Error: \(prefix)\(message)\n".utf8))
      }
      if together { group.barrier() }
      Foundation.exit(code.rawValue)
    }
  }
}
