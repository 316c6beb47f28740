// swift-tools-version: 6.0
// An example of using the toolkit from another package: it depends on it by path.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its directory, which is wherever the toolkit was
// cloned; a dependency on a released version would say `package: "rnnlm"` instead.
let toolkit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

let package = Package(
  name: "Sentiment",
  dependencies: [.package(path: toolkit.path)],
  targets: [
    .executableTarget(
      name: "Sentiment", dependencies: [.product(name: "RNNLM", package: toolkit.lastPathComponent.lowercased())])
  ]
)
