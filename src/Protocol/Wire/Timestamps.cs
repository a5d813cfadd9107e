namespace SecureChannels.Protocol.Wire;

/// <summary>Timestamps on the wire: unsigned seconds since the Unix epoch, within what <see cref="DateTimeOffset"/> can hold.</summary>
internal static class Timestamps
{
    private static readonly ulong MaxSeconds = (ulong)DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    public static DateTimeOffset FromUnixSeconds(ulong seconds, string field) =>
        seconds <= MaxSeconds
            ? DateTimeOffset.FromUnixTimeSeconds((long)seconds)
            : throw new WireFormatException(WireErrorKind.Malformed, $"{field} is past the year 9999.");

    public static ulong ToUnixSeconds(DateTimeOffset time) =>
        time.ToUnixTimeSeconds() is var seconds and >= 0 ? (ulong)seconds : throw new ArgumentOutOfRangeException(nameof(time), "Times before 1970 are not encoded.");
}
