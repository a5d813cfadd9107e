using System.Collections.Immutable;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Credentials;

/// <summary>
/// What an agent presents to prove its authority: its credential chain, root first, and the identity
/// histories of every delegating issuer (so a verifier who knows only the authority can check each link).
/// </summary>
/// <remarks>
/// Encoding: <c>[version = 1, credentials: [bin (signed credential), ...], issuer_histories: [bin (identity history), ...]]</c>,
/// followed by <c>registrations: [bin (signed delegation receipt), ...]</c> only when there is at least one;
/// <c>issuer_histories[i]</c> is the history of <c>credentials[i + 1]</c>'s issuer, so there is one fewer history than credentials.
/// </remarks>
public sealed class CredentialChain
{
    private const ulong CurrentVersion = 1;

    /// <summary>Wraps a chain; nothing is verified until a <see cref="CredentialVerifier"/> checks it.</summary>
    /// <exception cref="ArgumentException">The counts do not match or exceed the limit.</exception>
    public CredentialChain(IEnumerable<SignedCredential> credentials, IEnumerable<IdentityHistory> issuerHistories, IEnumerable<SignedDelegationReceipt>? registrations = null)
    {
        Credentials = [.. credentials];
        IssuerHistories = [.. issuerHistories];
        Registrations = registrations is null ? [] : [.. registrations.Distinct()];
        if (Credentials.IsEmpty || Credentials.Length > CredentialLimits.MaxChainLength || IssuerHistories.Length != Credentials.Length - 1)
        {
            throw new ArgumentException($"A chain has 1 to {CredentialLimits.MaxChainLength} credentials and one issuer history per delegated link.");
        }

        if (Registrations.Length > CredentialLimits.MaxChainLength)
        {
            throw new ArgumentException($"A chain carries at most {CredentialLimits.MaxChainLength} registration receipts.");
        }

        Encoded = Encode();
    }

    /// <summary>The root authority's receipts for delegated links (see <see cref="DelegationReceipt"/>); empty when none.</summary>
    public ImmutableArray<SignedDelegationReceipt> Registrations { get; }

    /// <summary>This chain with <paramref name="receipt"/> added: what a delegator hands its sub-agent after registering.</summary>
    public CredentialChain WithRegistration(SignedDelegationReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        return new CredentialChain(Credentials, IssuerHistories, [.. Registrations, receipt]);
    }

    /// <summary>The credentials, root first; the last one's subject is the presenting agent.</summary>
    public ImmutableArray<SignedCredential> Credentials { get; }

    /// <summary>The histories of the issuers of the delegated links, in link order.</summary>
    public ImmutableArray<IdentityHistory> IssuerHistories { get; }

    /// <summary>The last link: the credential of the presenting agent.</summary>
    public SignedCredential Leaf => Credentials[^1];

    /// <summary>The canonical encoding.</summary>
    public byte[] Encoded { get; }

    /// <summary>Decodes a chain presentation; nothing is verified yet.</summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.Malformed"/> or <see cref="CredentialErrorKind.ChainTooLong"/>.</exception>
    public static CredentialChain Decode(ReadOnlyMemory<byte> encoded)
    {
        try
        {
            return CanonicalEncoding.Decode(encoded, "credential chain", CredentialLimits.MaxChainPresentationLength, Read, static c => c.Encoded);
        }
        catch (WireFormatException e) when (e.Kind == WireErrorKind.TooLarge && e.Message.Contains("credentials has", StringComparison.Ordinal))
        {
            throw new CredentialException(CredentialErrorKind.ChainTooLong, e.Message, e);
        }
        catch (WireFormatException e)
        {
            throw new CredentialException(CredentialErrorKind.Malformed, e.Message, e);
        }
        catch (IdentityException e)
        {
            throw new CredentialException(CredentialErrorKind.Malformed, e.Message, e);
        }
    }

    private static CredentialChain Read(ref CanonicalReader reader)
    {
        var elements = reader.ReadArray("credential chain", 3, 4);
        reader.ReadVersion(CurrentVersion);
        var count = reader.ReadArray("credentials", 1, CredentialLimits.MaxChainLength);
        var credentials = new SignedCredential[count];
        for (var i = 0; i < count; i++)
        {
            var bytes = reader.ReadBytes("credential", 1, CredentialLimits.MaxCredentialLength);
            credentials[i] = CanonicalEncoding.Decode(bytes, "signed credential", CredentialLimits.MaxCredentialLength, SignedCredential.Read, static s => s.Encoded);
        }

        var historyCount = reader.ReadArray("issuer_histories", count - 1, count - 1);
        var histories = new IdentityHistory[historyCount];
        for (var i = 0; i < historyCount; i++)
        {
            histories[i] = IdentityHistory.Decode(reader.ReadBytes("issuer history", 1, IdentityLimits.MaxHistoryLength));
        }

        // Present only when non-empty, so a chain without receipts keeps its one encoding.
        var receipts = new SignedDelegationReceipt[elements == 4 ? reader.ReadArray("registrations", 1, CredentialLimits.MaxChainLength) : 0];
        for (var i = 0; i < receipts.Length; i++)
        {
            receipts[i] = SignedDelegationReceipt.Decode(reader.ReadBytes("registration", 1, 512));
        }

        return new CredentialChain(credentials, histories, receipts);
    }

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(Registrations.IsEmpty ? 3 : 4);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteArray(Credentials.Length);
        foreach (var credential in Credentials)
        {
            writer.WriteBytes(credential.Encoded);
        }

        writer.WriteArray(IssuerHistories.Length);
        foreach (var history in IssuerHistories)
        {
            writer.WriteBytes(history.Encoded);
        }

        if (!Registrations.IsEmpty)
        {
            writer.WriteArray(Registrations.Length);
            foreach (var receipt in Registrations)
            {
                writer.WriteBytes(receipt.Encoded);
            }
        }

        return writer.ToArray();
    }
}
