using System.Diagnostics.CodeAnalysis;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Circuits;

/// <summary>
/// Where a circuit goes (docs/protocol.md §9.3): <c>target</c> or <c>target@relay</c>, where the target is an
/// identifier or a registered name.
/// </summary>
public readonly record struct RelayAddress
{
    private RelayAddress(string target, string? relay)
    {
        Target = target;
        Relay = relay;
    }

    /// <summary>The identifier (<c>I</c> + 64 hex) or name the circuit is for.</summary>
    public string Target { get; }

    /// <summary>The relay the target is registered at, or null for "the relay this hop reaches".</summary>
    public string? Relay { get; }

    /// <summary>True when the target is an identifier rather than a name.</summary>
    public bool IsIdentifier => Identifier.TryParse(Target, out _);

    /// <summary>The address addressed to <paramref name="identifier"/> at the relay this hop reaches.</summary>
    public static RelayAddress For(Identifier identifier) => new(identifier.ToString(), null);

    /// <summary>Parses an address.</summary>
    /// <exception cref="FormatException">Not an address.</exception>
    public static RelayAddress Parse(string text) =>
        TryParse(text, out var address) ? address : throw new FormatException("Not a relay address: expected 'target' or 'target@relay', where each part is an identifier or a name of 1-63 characters a-z 0-9 - . starting with a letter or digit.");

    /// <summary>Parses an address, returning false for anything else.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out RelayAddress address)
    {
        address = default;
        if (text is null || text.Length > RelayLimits.MaxAddressLength)
        {
            return false;
        }

        var at = text.IndexOf('@', StringComparison.Ordinal);
        var target = at < 0 ? text : text[..at];
        var relay = at < 0 ? null : text[(at + 1)..];
        if (!IsValidTarget(target) || (relay is not null && !IsValidName(relay)))
        {
            return false;
        }

        address = new RelayAddress(target, relay);
        return true;
    }

    /// <summary>The credential attribute whose values are the names an agent may register, and holds (§9.3).</summary>
    public const string NameAttribute = "relay-name";

    /// <summary>True for a registrable name: 1-63 of <c>a-z 0-9 - .</c>, starting with a letter or digit.</summary>
    public static bool IsValidName([NotNullWhen(true)] string? name) =>
        name is { Length: > 0 and <= RelayLimits.MaxNameLength }
        && (char.IsAsciiLetterLower(name[0]) || char.IsAsciiDigit(name[0]))
        && name.All(static c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.');

    /// <summary>The same target at the relay this hop reaches (the relay part dropped).</summary>
    public RelayAddress WithoutRelay() => new(Target, null);

    /// <inheritdoc />
    public override string ToString() => Relay is null ? Target : $"{Target}@{Relay}";

    private static bool IsValidTarget(string target) => Identifier.TryParse(target, out _) || IsValidName(target);
}
