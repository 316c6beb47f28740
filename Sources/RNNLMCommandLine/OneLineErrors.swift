import ArgumentParser
import Foundation

extension ParsableCommand {
  /// Parses the command line and runs the command, like `main()`, except that every failure
  /// is ONE line on standard error — `Error: ` and what is wrong, with a pointer to `--help` for
  /// usage errors — and a status of 64 for usage errors or 1 for failures; `--help` still prints
  /// the full help. (ArgumentParser's own `main()` follows a usage error with the usage text.)
  public static func mainWithOneLineErrors(_ arguments: [String]? = nil) -> Never {
    do {
      var command = try parseAsRoot(arguments)
      try command.run()
      Foundation.exit(0)
    } catch let code as ExitCode {
      // The command has reported the failure itself.
      Foundation.exit(code.rawValue)
    } catch {
      let code = exitCode(for: error)
      if code == .success {
        print(fullMessage(for: error))
        Foundation.exit(0)
      }
      var message = message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
      if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
      message = message.replacingOccurrences(of: "\n", with: " ")
      if code.rawValue == 64 { message += " (see \(configuration.commandName ?? "the command") --help)" }
      FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
      Foundation.exit(code.rawValue)
    }
  }
}
