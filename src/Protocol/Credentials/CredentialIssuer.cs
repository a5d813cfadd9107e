using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Credentials;

/// <summary>Issues root credentials (as an authority) and delegated ones (as a holder narrowing its own).</summary>
public static class CredentialIssuer
{
    /// <summary>Issues a root credential from <paramref name="authority"/> to <paramref name="subject"/>.</summary>
    public static async Task<CredentialChain> IssueAsync(
        AgentIdentity authority,
        Identifier subject,
        Principal principal,
        AttributeSet attributes,
        DateTimeOffset notBefore,
        DateTimeOffset notAfter,
        int maxDelegationDepth,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(authority);
        var credential = new Credential(Credential.NewId(), authority.Identifier, subject, principal, attributes, notBefore, notAfter, maxDelegationDepth, parent: null);
        return new CredentialChain([await SignAsync(authority, credential, cancellationToken).ConfigureAwait(false)], []);
    }

    /// <summary>
    /// Delegates part of <paramref name="held"/> (a chain whose subject is <paramref name="holder"/>) to
    /// <paramref name="subject"/>: the same principal, a subset of the attributes, a validity within the
    /// parent's, and fewer further hops. Refuses anything wider, exactly as a verifier would.
    /// </summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.Widened"/> with the reason, or <see cref="CredentialErrorKind.SubjectMismatch"/> when the holder does not hold the chain.</exception>
    public static async Task<CredentialChain> DelegateAsync(
        AgentIdentity holder,
        CredentialChain held,
        Identifier subject,
        AttributeSet attributes,
        DateTimeOffset notBefore,
        DateTimeOffset notAfter,
        int maxDelegationDepth,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(holder);
        ArgumentNullException.ThrowIfNull(held);
        var parent = held.Leaf;
        if (parent.Credential.Subject != holder.Identifier)
        {
            throw new CredentialException(CredentialErrorKind.SubjectMismatch, $"The chain is held by {parent.Credential.Subject}, not {holder.Identifier}.");
        }

        if (held.Credentials.Length >= CredentialLimits.MaxChainLength)
        {
            throw new CredentialException(CredentialErrorKind.ChainTooLong, $"A chain has at most {CredentialLimits.MaxChainLength} links.");
        }

        var credential = new Credential(
            Credential.NewId(),
            holder.Identifier,
            subject,
            parent.Credential.Principal,
            attributes,
            notBefore,
            notAfter,
            maxDelegationDepth,
            new ParentReference(parent.Credential.Id, parent.SignedHash));
        Delegation.CheckNarrows(parent, credential, held.Credentials.Length);
        var signed = await SignAsync(holder, credential, cancellationToken).ConfigureAwait(false);
        // The receipts of the links above travel on: a verifier that requires registration checks every delegated link.
        return new CredentialChain([.. held.Credentials, signed], [.. held.IssuerHistories, holder.History], held.Registrations);
    }

    private static async Task<SignedCredential> SignAsync(AgentIdentity issuer, Credential credential, CancellationToken cancellationToken)
    {
        var signature = await SignatureDomain.SignAsync(issuer.Signer, SignatureDomain.Credential, credential.Encoded, cancellationToken).ConfigureAwait(false);
        return new SignedCredential(credential, issuer.Verified.Current.ChangeHash, signature);
    }
}
