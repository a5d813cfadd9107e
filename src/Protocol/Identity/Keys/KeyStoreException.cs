namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>What went wrong in a key store operation. Each kind has one documented meaning.</summary>
public enum KeyStoreErrorKind
{
    /// <summary>No key has the given name.</summary>
    NotFound = 1,

    /// <summary>A key with the given name already exists; creating it again would destroy it.</summary>
    AlreadyExists,

    /// <summary>
    /// Authenticated decryption of a vault file failed. The passphrase is wrong, <em>or</em> the file was altered
    /// (salt, nonce, ciphertext or authenticated header), <em>or</em> it was renamed from another key's name.
    /// These cases are cryptographically indistinguishable: the AEAD tag only says "not what was sealed".
    /// </summary>
    WrongPassphrase,

    /// <summary>A vault file is structurally invalid: wrong magic, unknown version, wrong length, or key derivation parameters out of range.</summary>
    Corrupt,

    /// <summary>A vault file grants permissions to its group or to others (Unix); it is refused without being read.</summary>
    InsecurePermissions,

    /// <summary>The key name does not match <c>[a-z0-9][a-z0-9._-]{0,63}</c>.</summary>
    InvalidName,
}

/// <summary>
/// A key store error. <see cref="Kind"/> says what happened. Messages may name the key but never contain a passphrase,
/// seed, private key or derived key.
/// </summary>
public sealed class KeyStoreException : Exception
{
    /// <summary>Creates an error of the given kind.</summary>
    public KeyStoreException(KeyStoreErrorKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    /// <summary>Creates an error of the given kind with an inner cause.</summary>
    public KeyStoreException(KeyStoreErrorKind kind, string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>What went wrong.</summary>
    public KeyStoreErrorKind Kind { get; }
}
