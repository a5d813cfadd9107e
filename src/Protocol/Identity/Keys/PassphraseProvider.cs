namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// Supplies the passphrase for the key <paramref name="keyName"/> when a <see cref="FileKeyVault"/> needs it
/// (on create and on open), for example by prompting the user.
/// </summary>
/// <param name="keyName">The (already validated) name of the key being created or opened.</param>
/// <returns>
/// The passphrase characters. They must not be empty. The vault reads them once, immediately, into a UTF-8 buffer that it
/// wipes after key derivation, and keeps no reference; the caller owns the memory and may wipe it once the vault call
/// that asked for it has returned.
/// </returns>
public delegate ReadOnlyMemory<char> PassphraseProvider(string keyName);
