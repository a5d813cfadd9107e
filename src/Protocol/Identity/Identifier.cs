using System.Security.Cryptography;

namespace SecureChannels.Protocol.Identity;

/// <summary>
/// An agent's stable identifier: SHA-256 of the encoded first change of its history. Keys rotate; the
/// identifier does not. Written as <c>I</c> followed by 64 lowercase hex digits.
/// </summary>
public readonly struct Identifier : IEquatable<Identifier>
{
    /// <summary>Bytes of an identifier.</summary>
    public const int Length = 32;

    private const char Prefix = 'I';
    private readonly byte[]? _bytes;

    private Identifier(byte[] bytes) => _bytes = bytes;

    /// <summary>The 32 identifier bytes (empty for <c>default</c>).</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>Wraps 32 identifier bytes.</summary>
    /// <exception cref="ArgumentException">Not 32 bytes.</exception>
    public static Identifier FromBytes(ReadOnlySpan<byte> bytes) =>
        bytes.Length == Length ? new Identifier(bytes.ToArray()) : throw new ArgumentException($"An identifier is {Length} bytes.", nameof(bytes));

    /// <summary>The identifier of a history whose first change encodes to <paramref name="firstChange"/>.</summary>
    public static Identifier FromFirstChange(ReadOnlySpan<byte> firstChange) => new(SHA256.HashData(firstChange));

    /// <summary>Parses the <c>I</c> + 64 hex digits form.</summary>
    public static bool TryParse(string? text, out Identifier identifier)
    {
        identifier = default;
        // One text form per identifier: lowercase hex only, so identifiers compare as strings too.
        if (text is not { Length: 1 + (2 * Length) } || text[0] != Prefix || text.AsSpan(1).ContainsAnyInRange('A', 'F'))
        {
            return false;
        }

        var bytes = new byte[Length];
        if (Convert.FromHexString(text.AsSpan(1), bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != Length)
        {
            return false;
        }

        identifier = new Identifier(bytes);
        return true;
    }

    /// <summary>Parses the <c>I</c> + 64 hex digits form.</summary>
    /// <exception cref="FormatException">The text is not an identifier.</exception>
    public static Identifier Parse(string text) =>
        TryParse(text, out var identifier) ? identifier : throw new FormatException($"An identifier is '{Prefix}' followed by {2 * Length} hex digits.");

    /// <inheritdoc />
    public bool Equals(Identifier other) => Bytes.SequenceEqual(other.Bytes);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Identifier other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.AddBytes(Bytes);
        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => _bytes is null ? string.Empty : Prefix + Convert.ToHexStringLower(_bytes);

    /// <summary>Equality of identifiers.</summary>
    public static bool operator ==(Identifier left, Identifier right) => left.Equals(right);

    /// <summary>Inequality of identifiers.</summary>
    public static bool operator !=(Identifier left, Identifier right) => !left.Equals(right);
}
