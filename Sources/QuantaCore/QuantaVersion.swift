/// The version Quanta reports (`--version`) and records in what it writes.
public enum QuantaVersion {
    public static let string = "0.1.0"
}
