using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Credentials;

/// <summary>Whom a credential's subject acts for.</summary>
public enum PrincipalKind
{
    /// <summary>The agent itself: independent authority, on nobody else's behalf.</summary>
    Self = 0,

    /// <summary>A person.</summary>
    User = 1,

    /// <summary>A team or group of people.</summary>
    Team = 2,

    /// <summary>A system or service.</summary>
    System = 3,
}

/// <summary>
/// The party on whose behalf an agent acts: written <c>self</c>, or <c>kind:id</c> such as <c>user:alice@example.com</c>.
/// </summary>
/// <remarks>Encoding: <c>[kind: uint, id: str]</c>, with an empty id for <see cref="PrincipalKind.Self"/>.</remarks>
public readonly record struct Principal
{
    /// <summary>Creates a principal. <see cref="PrincipalKind.Self"/> has an empty id; every other kind needs one.</summary>
    public Principal(PrincipalKind kind, string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (!Enum.IsDefined(kind))
        {
            throw new ArgumentOutOfRangeException(nameof(kind));
        }

        if ((kind == PrincipalKind.Self) != (id.Length == 0) || System.Text.Encoding.UTF8.GetByteCount(id) > CredentialLimits.MaxValueLength)
        {
            throw new ArgumentException($"A {kind} principal needs {(kind == PrincipalKind.Self ? "no id" : $"an id of 1 to {CredentialLimits.MaxValueLength} bytes")}.", nameof(id));
        }

        Kind = kind;
        Id = id;
    }

    /// <summary>The agent acting on its own authority.</summary>
    public static Principal Self => new(PrincipalKind.Self, string.Empty);

    /// <summary>The kind of principal.</summary>
    public PrincipalKind Kind { get; }

    /// <summary>The principal's id within its kind (empty for <see cref="PrincipalKind.Self"/> and for <c>default</c>).</summary>
    public string Id { get => field ?? string.Empty; }

    /// <summary>Parses <c>self</c> or <c>user:ID</c>, <c>team:ID</c>, <c>system:ID</c>.</summary>
    /// <exception cref="FormatException">Not a principal.</exception>
    public static Principal Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text == "self")
        {
            return Self;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? null : text[..colon] switch
        {
            "user" => PrincipalKind.User,
            "team" => PrincipalKind.Team,
            "system" => (PrincipalKind?)PrincipalKind.System,
            _ => null,
        };
        if (kind is null || colon == text.Length - 1)
        {
            throw new FormatException("A principal is 'self', or 'user:ID', 'team:ID' or 'system:ID'.");
        }

        return new Principal(kind.Value, text[(colon + 1)..]);
    }

    /// <inheritdoc />
    public override string ToString() => Kind == PrincipalKind.Self ? "self" : $"{Kind.ToString().ToLowerInvariant()}:{Id}";

    /// <summary>Equal when kind and id are; <c>default</c> equals <see cref="Self"/>.</summary>
    public bool Equals(Principal other) => Kind == other.Kind && string.Equals(Id, other.Id, StringComparison.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Kind, StringComparer.Ordinal.GetHashCode(Id));

    internal void Write(ref CanonicalWriter writer)
    {
        writer.WriteArray(2);
        writer.WriteUnsigned((ulong)Kind);
        writer.WriteText(Id);
    }

    internal static Principal Read(ref CanonicalReader reader)
    {
        reader.ReadArray("principal", 2, 2);
        var kind = reader.ReadUnsigned("principal kind");
        var id = reader.ReadText("principal id", CredentialLimits.MaxValueLength);
        if (kind > (ulong)PrincipalKind.System)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"principal: kind {kind} is unknown.");
        }

        try
        {
            return new Principal((PrincipalKind)kind, id);
        }
        catch (ArgumentException e)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"principal: {e.Message}", e);
        }
    }
}
