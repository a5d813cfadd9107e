namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// A set of named Ed25519 keys: create, open, check, delete. <see cref="InMemoryKeyStore"/> and <see cref="FileKeyVault"/>
/// implement it now; a KMS or HSM back end can implement it later without changing callers.
/// </summary>
/// <remarks>
/// Key names must match <c>[a-z0-9][a-z0-9._-]{0,63}</c> (ASCII only; so a name can never be a path). Every method
/// throws <see cref="KeyStoreException"/> with <see cref="KeyStoreErrorKind.InvalidName"/> for any other name.
/// The caller owns each returned <see cref="ISigner"/> and must dispose it.
/// </remarks>
public interface IKeyStore
{
    /// <summary>Generates a new key under <paramref name="name"/> and returns a signer for it.</summary>
    /// <exception cref="KeyStoreException"><see cref="KeyStoreErrorKind.AlreadyExists"/> if a key has that name; <see cref="KeyStoreErrorKind.InvalidName"/>.</exception>
    ValueTask<ISigner> CreateAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Opens the existing key <paramref name="name"/>.</summary>
    /// <exception cref="KeyStoreException"><see cref="KeyStoreErrorKind.NotFound"/> if there is no such key; other kinds are store-specific.</exception>
    ValueTask<ISigner> OpenAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Whether a key named <paramref name="name"/> exists.</summary>
    /// <exception cref="KeyStoreException"><see cref="KeyStoreErrorKind.InvalidName"/>.</exception>
    ValueTask<bool> ExistsAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Destroys the key <paramref name="name"/>.</summary>
    /// <exception cref="KeyStoreException"><see cref="KeyStoreErrorKind.NotFound"/> if there is no such key; <see cref="KeyStoreErrorKind.InvalidName"/>.</exception>
    ValueTask DeleteAsync(string name, CancellationToken cancellationToken = default);
}
