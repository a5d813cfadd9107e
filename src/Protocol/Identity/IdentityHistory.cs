using System.Collections.Immutable;
using System.Security.Cryptography;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Identity;

/// <summary>How a received history relates to one already known for the same identifier.</summary>
public enum HistoryComparison
{
    /// <summary>The same changes.</summary>
    Same,

    /// <summary>The received history extends the known one: the identity rotated its key since.</summary>
    Newer,

    /// <summary>The received history is a prefix of the known one: old or truncated. Keep the known one.</summary>
    Older,

    /// <summary>The histories diverge after a common prefix: a fork. Trust neither without investigation.</summary>
    Forked,
}

/// <summary>
/// An identity's signed change history, as exchanged. It proves nothing until <see cref="Verify()"/> has
/// checked every link and signature and returned a <see cref="VerifiedIdentity"/>.
/// </summary>
/// <remarks>Encoding: <c>[version = 1, changes: [signed change, ...]]</c>, at most <see cref="IdentityLimits.MaxChanges"/> changes.</remarks>
public sealed class IdentityHistory
{
    private const ulong CurrentVersion = 1;

    /// <summary>Wraps changes; nothing is checked until <see cref="Verify()"/>.</summary>
    public IdentityHistory(IEnumerable<SignedIdentityChange> changes)
    {
        Changes = [.. changes];
        Encoded = Encode(Changes);
    }

    /// <summary>The changes, oldest first.</summary>
    public ImmutableArray<SignedIdentityChange> Changes { get; }

    /// <summary>The canonical encoding.</summary>
    public byte[] Encoded { get; }

    /// <summary>Decodes a history. The result is not yet verified.</summary>
    /// <exception cref="IdentityException"><see cref="IdentityErrorKind.Malformed"/> (with the wire error inside) or <see cref="IdentityErrorKind.TooLong"/>.</exception>
    public static IdentityHistory Decode(ReadOnlyMemory<byte> encoded)
    {
        try
        {
            return CanonicalEncoding.Decode(encoded, "identity history", IdentityLimits.MaxHistoryLength, Read, static h => h.Encoded);
        }
        catch (WireFormatException e) when (e.Kind == WireErrorKind.TooLarge && (encoded.Length > IdentityLimits.MaxHistoryLength || e.Message.StartsWith("identity history: changes has", StringComparison.Ordinal)))
        {
            throw new IdentityException(IdentityErrorKind.TooLong, e.Message, e);
        }
        catch (WireFormatException e)
        {
            throw new IdentityException(IdentityErrorKind.Malformed, e.Message, e);
        }
    }

    /// <summary>
    /// Checks the whole history: the first change has no predecessor and signs itself; every later change
    /// links to the hash of the one before, is not older than it, and is signed by both its own key and the
    /// previous key.
    /// </summary>
    /// <exception cref="IdentityException">Why the history must not be trusted, naming the change.</exception>
    public VerifiedIdentity Verify() => Verify(cache: null);

    /// <summary>
    /// <see cref="Verify()"/>, skipped whole when <paramref name="cache"/> holds these exact bytes as verified (every
    /// check is a pure function of them), and remembered there when it succeeds.
    /// </summary>
    /// <exception cref="IdentityException">Why the history must not be trusted, naming the change.</exception>
    internal VerifiedIdentity Verify(IVerificationMemory? cache)
    {
        var key = cache is null ? default : VerificationKey.Derive(VerifiedKind.IdentityHistory, Encoded);
        if (cache?.Contains(key) != true)
        {
            Check();
            cache?.Add(key);
        }

        return new VerifiedIdentity(this);
    }

    private void Check()
    {
        if (Changes.IsEmpty)
        {
            throw new IdentityException(IdentityErrorKind.Empty, "The history has no change.");
        }

        if (Changes.Length > IdentityLimits.MaxChanges)
        {
            throw new IdentityException(IdentityErrorKind.TooLong, $"The history has {Changes.Length} changes; the limit is {IdentityLimits.MaxChanges}.");
        }

        IdentityChange? previous = null;
        for (var i = 0; i < Changes.Length; i++)
        {
            var (change, signature, previousSignature) = Changes[i];
            if (previous is null)
            {
                if (change.PreviousChangeHash is not null || previousSignature is not null)
                {
                    throw new IdentityException(IdentityErrorKind.BrokenChain, "Change 0 claims a predecessor; a history starts with a change that has none.");
                }
            }
            else
            {
                if (change.PreviousChangeHash is null || !CryptographicOperations.FixedTimeEquals(change.PreviousChangeHash, previous.ChangeHash))
                {
                    throw new IdentityException(IdentityErrorKind.BrokenChain, $"Change {i} does not follow change {i - 1}.");
                }

                if (change.CreatedAt < previous.CreatedAt)
                {
                    throw new IdentityException(IdentityErrorKind.NonMonotonicTime, $"Change {i} is dated before change {i - 1}.");
                }

                if (previousSignature is null || !SignatureDomain.Verify(previous.PublicKey, SignatureDomain.IdentityChange, change.Encoded, previousSignature))
                {
                    throw new IdentityException(IdentityErrorKind.BadSignature, $"Change {i} is not signed by the key of change {i - 1}.");
                }
            }

            if (!SignatureDomain.Verify(change.PublicKey, SignatureDomain.IdentityChange, change.Encoded, signature))
            {
                throw new IdentityException(IdentityErrorKind.BadSignature, $"Change {i} is not signed by its own key.");
            }

            previous = change;
        }
    }

    /// <summary>How this history relates to <paramref name="known"/>, a history of the same identifier.</summary>
    public HistoryComparison CompareTo(IdentityHistory known)
    {
        ArgumentNullException.ThrowIfNull(known);
        var common = Math.Min(Changes.Length, known.Changes.Length);
        for (var i = 0; i < common; i++)
        {
            if (!Changes[i].Change.Equals(known.Changes[i].Change))
            {
                return HistoryComparison.Forked;
            }
        }

        return Changes.Length.CompareTo(known.Changes.Length) switch
        {
            0 => HistoryComparison.Same,
            > 0 => HistoryComparison.Newer,
            _ => HistoryComparison.Older,
        };
    }

    private static IdentityHistory Read(ref CanonicalReader reader)
    {
        reader.ReadArray("identity history", 2, 2);
        reader.ReadVersion(CurrentVersion);
        var count = reader.ReadArray("changes", 1, IdentityLimits.MaxChanges);
        var changes = new SignedIdentityChange[count];
        for (var i = 0; i < count; i++)
        {
            changes[i] = SignedIdentityChange.Read(ref reader);
        }

        return new IdentityHistory(changes);
    }

    private static byte[] Encode(ImmutableArray<SignedIdentityChange> changes)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteArray(changes.Length);
        foreach (var change in changes)
        {
            change.Write(ref writer);
        }

        return writer.ToArray();
    }
}

/// <summary>
/// An identity whose history was verified: its stable identifier and its current key. Only
/// <see cref="IdentityHistory.Verify()"/> makes one.
/// </summary>
public sealed class VerifiedIdentity
{
    internal VerifiedIdentity(IdentityHistory history)
    {
        History = history;
        Identifier = Identifier.FromFirstChange(history.Changes[0].Change.Encoded);
    }

    /// <summary>The stable identifier.</summary>
    public Identifier Identifier { get; }

    /// <summary>The verified history.</summary>
    public IdentityHistory History { get; }

    /// <summary>The latest change: its key signs for the identity now.</summary>
    public IdentityChange Current => History.Changes[^1].Change;

    /// <summary>The Ed25519 public key that signs for the identity now.</summary>
    public ReadOnlySpan<byte> PublicKey => Current.PublicKey;

    /// <summary>The change with hash <paramref name="changeHash"/>, or null when the history has none.</summary>
    public IdentityChange? FindChange(ReadOnlySpan<byte> changeHash)
    {
        foreach (var signed in History.Changes)
        {
            if (signed.Change.ChangeHash.AsSpan().SequenceEqual(changeHash))
            {
                return signed.Change;
            }
        }

        return null;
    }

    /// <inheritdoc />
    public override string ToString() => Identifier.ToString();
}
