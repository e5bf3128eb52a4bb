// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title ImageRegistry: hashes, access control and audit for sealed medical images
/// @notice The on-chain half of ScanSeal. The encrypted bytes live in IPFS; this contract holds
/// what must not be rewritten: each image's hashes and binary manifest CID, who may open it, every
/// access attempt (allowed or denied), and the roots of the Merkle-batched logs that gateways
/// anchor instead of sending one transaction per record.
/// @dev Every loop is bounded by a constant (the consistency proof is at most 64 hashes), every
/// state change and every access attempt emits an event, and every refusal is a custom error.
contract ImageRegistry {
    /// @notice The paper's ImageRecord, with the metadata replaced by hashes (the encrypted
    /// metadata stays in the sealed envelope) and the CID kept in binary.
    struct ImageRecord {
        bytes cid;
        bytes32 imageHash; // H1 = SHA-256 of the original file bytes
        bytes32 h3; // H3 = SHA-256(H2 || timestamp)
        bytes32 pixelDigest; // SHA-256 of the canonical decoded pixels
        address uploader; // the signer of the record (see storeImage), not the sender
        uint64 timestamp; // block time of storeImage; 0 means no record
        bool reserved; // an admin granted on it before any storeImage: it lives in a batch
    }

    /// @notice The paper's AccessLog, with the account that reported the attempt (a gateway or
    /// admin, or the accessor itself), so a self-reported entry is never mistaken for a
    /// gateway's. Two storage slots.
    struct AccessLog {
        address accessor;
        uint64 accessTime;
        uint8 accessType;
        bool authorized;
        uint8 reason;
        address reporter;
    }

    /// @notice A Merkle root (RFC 6962) published by a log operator.
    struct Anchor {
        bytes32 root;
        uint64 size;
        uint64 timestamp;
    }

    // grant states: 0 = never granted (the mapping default), then:
    uint8 private constant _GRANT_ACTIVE = 1;
    uint8 private constant _GRANT_REVOKED = 2;

    /// @notice Reason codes the contract itself assigns (below FIRST_REPORTER_REASON); reporters
    /// pass REASON_NONE or their own codes, from FIRST_REPORTER_REASON up.
    uint8 public constant REASON_NONE = 0;
    uint8 public constant REASON_NO_GRANT = 1;
    uint8 public constant REASON_REVOKED = 2;
    uint8 public constant FIRST_REPORTER_REASON = 16;

    /// @dev A record's controller when it was handed over to nobody (see setController).
    address private constant _NO_CONTROLLER = address(1);

    /// @dev Domain tag of the digest an uploader signs for storeImage (see recordDigest).
    bytes32 private constant _STORE_TAG = keccak256("ScanSeal ImageRegistry storeImage");
    /// @dev Half the secp256k1 order: a signature with a larger s is the malleated twin.
    uint256 private constant _HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    uint256 public constant MAX_CID_LENGTH = 128;
    uint256 public constant MAX_PROOF_LENGTH = 64;
    /// @notice The largest log an anchor may claim (2**40 entries): a size is the operator's
    /// claim, checked off chain against the log, and a cap keeps a wrong first claim such as
    /// 2**64 - 1 from freezing the operator's list of anchors.
    uint64 public constant MAX_LOG_SIZE = 2 ** 40;
    uint256 private constant _MAX_BATCH_GRANTS = 256;

    address public owner;
    /// @notice The account the owner proposed as the next owner; it becomes owner only by
    /// calling acceptOwnership, so a mistyped address never takes the role.
    address public pendingOwner;
    mapping(address => bool) private _admins;
    mapping(address => bool) private _uploaders;
    mapping(address => bytes32) private _identities;
    mapping(bytes32 => address) private _cardHolders; // one account per identity-card hash
    mapping(bytes32 => ImageRecord) private _records;
    mapping(bytes32 => mapping(address => uint8)) private _grants;
    // zero: the record's uploader controls it (no storage written at storeImage), else the
    // account it was handed to, or _NO_CONTROLLER
    mapping(bytes32 => address) private _handOvers;
    mapping(bytes32 => AccessLog[]) private _accessLogs;
    mapping(address => Anchor[]) private _anchors;

    error NotOwner(address caller);
    error NotPendingOwner(address caller);
    error NotAdmin(address caller);
    error NotUploader(address caller);
    error NotRecordController(bytes32 recordId, address caller);
    error NotAccessReporter(address caller, address accessor);
    error UnknownIdentity(address account);
    error UnknownRecord(bytes32 recordId);
    error RecordExists(bytes32 recordId);
    error RecordReserved(bytes32 recordId);
    error AlreadyGranted(bytes32 recordId, address grantee);
    error NotGranted(bytes32 recordId, address grantee);
    error InvalidArgument(uint8 code);
    error AnchorNotGrowing(uint64 latestSize, uint64 size);
    error InconsistentAnchor(uint64 latestSize, uint64 size);
    error UnknownAnchor(address operator, uint256 index);
    error UnknownAccessLog(bytes32 recordId, uint256 index);
    error CardInUse(bytes32 cardHash, address holder);

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferStarted(address indexed owner, address indexed pendingOwner);
    event AdminChanged(address indexed account, bool enabled, address indexed by);
    event IdentityRegistered(
        address indexed account, bytes32 cardHash, bytes32 previousCardHash, address indexed by
    );
    event UploaderChanged(address indexed account, bool authorized, address indexed by);
    event ImageStored(
        bytes32 indexed recordId,
        address indexed uploader,
        bytes cid,
        bytes32 imageHash,
        bytes32 h3,
        bytes32 pixelDigest,
        uint64 timestamp
    );
    event ControllerChanged(
        bytes32 indexed recordId, address indexed previous, address indexed controller, address by
    );
    event AccessGranted(bytes32 indexed recordId, address indexed grantee, address indexed by);
    event AccessRevoked(bytes32 indexed recordId, address indexed grantee, address indexed by);
    event AccessAttempt(
        bytes32 indexed recordId,
        address indexed accessor,
        uint8 accessType,
        bool allowed,
        uint8 reason,
        address reporter
    );
    /// @notice An access attempt on `recordId` decided through `viaId`, a record that contains
    /// it (an instance through its study record); the AccessAttempt beside it is the decision.
    event AccessVia(bytes32 indexed recordId, bytes32 indexed viaId, address indexed accessor);
    event BatchAnchored(
        address indexed operator, uint256 indexed index, bytes32 root, uint64 size, uint64 timestamp
    );

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyAdmin() {
        if (!isAdmin(msg.sender)) revert NotAdmin(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    // ---------------------------------------------------------------- roles and identities

    /// @notice Step one of two: propose `newOwner`, who must call acceptOwnership. Proposing
    /// the owner itself withdraws a pending proposal; a later proposal replaces an earlier one.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert InvalidArgument(1);
        address proposed = newOwner == owner ? address(0) : newOwner;
        if (proposed == pendingOwner) return; // nothing changes, nothing is emitted
        pendingOwner = proposed;
        emit OwnershipTransferStarted(owner, proposed);
    }

    /// @notice Step two: the proposed owner takes the role (and the old owner loses it).
    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotPendingOwner(msg.sender);
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    /// @notice Department admins authorize uploaders, register identities, grant on behalf of
    /// their department, report access attempts and anchor batches. The owner is always one, so
    /// setting it is refused; a call that changes nothing emits nothing.
    function setAdmin(address account, bool enabled) external onlyOwner {
        if (account == address(0)) revert InvalidArgument(1);
        if (account == owner) revert InvalidArgument(7);
        if (_admins[account] == enabled) return;
        _admins[account] = enabled;
        emit AdminChanged(account, enabled, msg.sender);
    }

    function isAdmin(address account) public view returns (bool) {
        return account == owner || _admins[account];
    }

    /// @notice Binds an account to the hash of its holder's identity card (never the card).
    /// Admins register accounts that have no identity yet; changing a registered identity, and
    /// setting the owner's, is the owner's alone, and the event carries the hash it replaced. A
    /// card hash belongs to one account at a time.
    function registerIdentity(address account, bytes32 cardHash) external onlyAdmin {
        if (account == address(0)) revert InvalidArgument(1);
        if (cardHash == bytes32(0)) revert InvalidArgument(2);
        bytes32 previous = _identities[account];
        if (previous == cardHash) return; // nothing changes, nothing is emitted
        if ((previous != bytes32(0) || account == owner) && msg.sender != owner) {
            revert NotOwner(msg.sender);
        }
        address holder = _cardHolders[cardHash];
        if (holder != address(0)) revert CardInUse(cardHash, holder);
        if (previous != bytes32(0)) delete _cardHolders[previous];
        _cardHolders[cardHash] = account;
        _identities[account] = cardHash;
        emit IdentityRegistered(account, cardHash, previous, msg.sender);
    }

    function identityOf(address account) external view returns (bytes32) {
        return _identities[account];
    }

    function authorizeUploader(address account) external onlyAdmin {
        if (_identities[account] == bytes32(0)) revert UnknownIdentity(account);
        if (_uploaders[account]) return;
        _uploaders[account] = true;
        emit UploaderChanged(account, true, msg.sender);
    }

    function deauthorizeUploader(address account) external onlyAdmin {
        if (!_uploaders[account]) return;
        _uploaders[account] = false;
        emit UploaderChanged(account, false, msg.sender);
    }

    function isUploader(address account) external view returns (bool) {
        return _uploaders[account];
    }

    // ---------------------------------------------------------------- records (per-record mode)

    /// @notice The paper's storeImage: one transaction per image. The record id is
    /// keccak256(cid), so any holder of the manifest CID can find the record. The record is the
    /// uploader's by its signature over the CID and the hashes (recordDigest, EIP-191), not by
    /// who sends the transaction: a copy of a pending storeImage sent first with a higher tip
    /// stores the same record for the same uploader. A record an admin has granted on before it
    /// was stored (one that lives in an anchored batch) cannot be stored (RecordReserved).
    function storeImage(
        bytes calldata cid,
        bytes32 imageHash,
        bytes32 h3,
        bytes32 pixelDigest,
        bytes calldata signature
    ) external returns (bytes32 recordId) {
        if (cid.length < 2 || cid.length > MAX_CID_LENGTH) revert InvalidArgument(3);
        if (imageHash == bytes32(0) || h3 == bytes32(0)) revert InvalidArgument(4);
        address uploader = _recover(recordDigest(cid, imageHash, h3, pixelDigest), signature);
        if (!_uploaders[uploader]) revert NotUploader(uploader);
        recordId = keccak256(cid);
        ImageRecord storage record = _records[recordId];
        if (record.timestamp != 0) revert RecordExists(recordId);
        if (record.reserved) revert RecordReserved(recordId);
        record.cid = cid;
        record.imageHash = imageHash;
        record.h3 = h3;
        record.pixelDigest = pixelDigest;
        record.uploader = uploader;
        record.timestamp = uint64(block.timestamp);
        emit ImageStored(
            recordId, uploader, cid, imageHash, h3, pixelDigest, uint64(block.timestamp)
        );
    }

    /// @notice What an uploader signs (EIP-191, "\x19Ethereum Signed Message:\n32" + digest) to
    /// store a record: bound to this chain, this contract, the CID and the three hashes.
    function recordDigest(bytes calldata cid, bytes32 imageHash, bytes32 h3, bytes32 pixelDigest)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                _STORE_TAG, block.chainid, address(this), keccak256(cid), imageHash, h3, pixelDigest
            )
        );
    }

    /// @notice Whether an admin granted on the record before any storeImage (so none can claim
    /// it: it lives in an anchored batch).
    function isReserved(bytes32 recordId) external view returns (bool) {
        return _records[recordId].reserved;
    }

    function getRecord(bytes32 recordId)
        external
        view
        returns (
            bytes memory cid,
            bytes32 imageHash,
            bytes32 h3,
            bytes32 pixelDigest,
            address uploader,
            uint64 timestamp
        )
    {
        ImageRecord storage record = _records[recordId];
        if (record.timestamp == 0) revert UnknownRecord(recordId);
        return (
            record.cid,
            record.imageHash,
            record.h3,
            record.pixelDigest,
            record.uploader,
            record.timestamp
        );
    }

    /// @notice The paper's verifyImage: does the provided H1 match the stored one?
    function verifyImage(bytes32 recordId, bytes32 providedHash) external view returns (bool) {
        ImageRecord storage record = _records[recordId];
        return record.timestamp != 0 && record.imageHash == providedHash;
    }

    /// @notice All three hashes at once, as a recipient checks them after decryption.
    function verifyRecord(bytes32 recordId, bytes32 imageHash, bytes32 h3, bytes32 pixelDigest)
        external
        view
        returns (bool)
    {
        ImageRecord storage record = _records[recordId];
        return record.timestamp != 0 && record.imageHash == imageHash && record.h3 == h3
            && record.pixelDigest == pixelDigest;
    }

    // ---------------------------------------------------------------- access control

    /// @notice Who controls an on-chain record besides the admins: its uploader until an admin
    /// or the controller hands it over; the zero address when it was handed to nobody. The
    /// controller may open the record and, while it is an authorized uploader, grant and revoke
    /// on it: deauthorizing an uploader stops its control of every record's grants at once.
    function controllerOf(bytes32 recordId) public view returns (address) {
        address handedTo = _handOvers[recordId];
        if (handedTo == address(0)) return _records[recordId].uploader;
        return handedTo == _NO_CONTROLLER ? address(0) : handedTo;
    }

    /// @notice Hands an on-chain record to `controller` (a registered identity), or to nobody
    /// (the zero address: only admins control it, and no one opens it without a grant). Allowed
    /// to admins, and to the current controller while it is an authorized uploader.
    function setController(bytes32 recordId, address controller) external {
        // slither-disable-next-line incorrect-equality,timestamp (existence: 0 means no record)
        if (_records[recordId].timestamp == 0) revert UnknownRecord(recordId);
        _requireController(recordId);
        if (controller == _NO_CONTROLLER) revert InvalidArgument(8);
        if (controller != address(0) && _identities[controller] == bytes32(0)) {
            revert UnknownIdentity(controller);
        }
        address previous = controllerOf(recordId);
        if (controller == previous) return; // nothing changes, nothing is emitted
        _handOvers[recordId] = controller == address(0) ? _NO_CONTROLLER : controller;
        emit ControllerChanged(recordId, previous, controller, msg.sender);
    }

    /// @notice Grants come from an admin or the record's controller (while an authorized
    /// uploader). An admin may grant on a record that exists only in an anchored batch (not
    /// individually on chain).
    function grantAccess(bytes32 recordId, address grantee) external {
        _grant(recordId, grantee);
    }

    /// @notice `grantAccess` for each pair (`recordIds[i]`, `grantees[i]`), all in one
    /// transaction or none: a gateway reserves and grants the records it has just appended to
    /// its batch together, before it acknowledges any of them. 1 to 256 pairs.
    function grantAccessBatch(bytes32[] calldata recordIds, address[] calldata grantees)
        external
    {
        uint256 count = recordIds.length;
        if (count == 0 || count > _MAX_BATCH_GRANTS || count != grantees.length) {
            revert InvalidArgument(11);
        }
        for (uint256 i = 0; i < count; ++i) {
            _grant(recordIds[i], grantees[i]);
        }
    }

    function _grant(bytes32 recordId, address grantee) private {
        _requireController(recordId);
        if (_identities[grantee] == bytes32(0)) revert UnknownIdentity(grantee);
        if (_grants[recordId][grantee] == _GRANT_ACTIVE) revert AlreadyGranted(recordId, grantee);
        ImageRecord storage record = _records[recordId];
        if (record.timestamp == 0 && !record.reserved) record.reserved = true; // a batch's
        _grants[recordId][grantee] = _GRANT_ACTIVE;
        emit AccessGranted(recordId, grantee, msg.sender);
    }

    /// @notice Stops future releases; it cannot take back what was already downloaded.
    function revokeAccess(bytes32 recordId, address grantee) external {
        _requireController(recordId);
        if (_grants[recordId][grantee] != _GRANT_ACTIVE) revert NotGranted(recordId, grantee);
        _grants[recordId][grantee] = _GRANT_REVOKED;
        emit AccessRevoked(recordId, grantee, msg.sender);
    }

    /// @notice 0: never granted, 1: active grant, 2: revoked.
    function grantOf(bytes32 recordId, address account) external view returns (uint8) {
        return _grants[recordId][account];
    }

    function hasAccess(bytes32 recordId, address account) public view returns (bool) {
        if (account == address(0)) return false;
        // slither-disable-next-line timestamp (compares the controller address, not a time)
        if (controllerOf(recordId) == account) return true;
        return _grants[recordId][account] == _GRANT_ACTIVE;
    }

    /// @notice The paper's logAccess, made callable: a gateway (an admin) reports any attempt, and
    /// a registered identity may report its own attempt on a record the chain knows of for it
    /// (stored on chain, or one it holds or held a grant on). The contract decides `allowed`
    /// from its own grant table; a reporter's `reason` (bad signature, replay, ...) must be one of
    /// the reporter codes (>= FIRST_REPORTER_REASON) and can only turn an attempt into a denial,
    /// never into an allowed access. The reporter is stored with the entry. Never reverts for a
    /// denial, so the denial itself is on record.
    function logAccess(bytes32 recordId, address accessor, uint8 accessType, uint8 reason)
        external
        returns (bool allowed)
    {
        if (!isAdmin(msg.sender)) {
            if (msg.sender != accessor || _identities[msg.sender] == bytes32(0)) {
                revert NotAccessReporter(msg.sender, accessor);
            }
            if (_records[recordId].timestamp == 0 && _grants[recordId][msg.sender] == 0) {
                revert UnknownRecord(recordId);
            }
        }
        return _logAccess(recordId, recordId, accessor, accessType, reason);
    }

    /// @notice logAccess for a record reached through `viaId`, a record that contains it (an
    /// instance through its study record, whose manifest lists the instance): allowed when the
    /// accessor may open either, so one grant or revocation on the study covers its instances.
    /// Only an admin (a gateway) reports this way: it checked that the study's manifest lists
    /// the record and that one uploader owns both, as it checks everything it relays (an admin
    /// may grant on any record anyway). A denial is `revoked` when either grant was revoked.
    function logAccessVia(
        bytes32 recordId,
        bytes32 viaId,
        address accessor,
        uint8 accessType,
        uint8 reason
    ) external onlyAdmin returns (bool allowed) {
        if (viaId == recordId) revert InvalidArgument(12);
        allowed = _logAccess(recordId, viaId, accessor, accessType, reason);
        emit AccessVia(recordId, viaId, accessor);
    }

    /// @dev Decide (unless the reporter's reason denies) and append one access attempt on
    /// `recordId`, allowed by a grant on it or on `viaId` (`recordId` itself for logAccess).
    function _logAccess(
        bytes32 recordId,
        bytes32 viaId,
        address accessor,
        uint8 accessType,
        uint8 reason
    ) private returns (bool allowed) {
        if (reason != REASON_NONE && reason < FIRST_REPORTER_REASON) revert InvalidArgument(6);
        if (reason == REASON_NONE) {
            allowed = hasAccess(recordId, accessor)
                || (viaId != recordId && hasAccess(viaId, accessor));
            if (!allowed) {
                bool revoked = _grants[recordId][accessor] == _GRANT_REVOKED
                    || _grants[viaId][accessor] == _GRANT_REVOKED;
                reason = revoked ? REASON_REVOKED : REASON_NO_GRANT;
            }
        }
        _accessLogs[recordId].push(
            AccessLog(accessor, uint64(block.timestamp), accessType, allowed, reason, msg.sender)
        );
        emit AccessAttempt(recordId, accessor, accessType, allowed, reason, msg.sender);
    }

    function accessLogCount(bytes32 recordId) external view returns (uint256) {
        return _accessLogs[recordId].length;
    }

    function accessLogAt(bytes32 recordId, uint256 index) external view returns (AccessLog memory) {
        if (index >= _accessLogs[recordId].length) revert UnknownAccessLog(recordId, index);
        return _accessLogs[recordId][index];
    }

    // ---------------------------------------------------------------- batched mode

    /// @notice Publishes the root of the operator's RFC 6962 log at `size` leaves. The chain
    /// itself checks the RFC 9162 consistency proof from the operator's previous root, so an
    /// anchored log can only grow: no operator can rewrite an entry it has anchored.
    function anchorBatch(bytes32 root, uint64 size, bytes32[] calldata consistency)
        external
        onlyAdmin
        returns (uint256 index)
    {
        index = _anchors[msg.sender].length;
        uint64 latestSize = 0;
        bytes32 latestRoot = sha256("");
        if (index > 0) {
            Anchor storage latest = _anchors[msg.sender][index - 1];
            latestSize = latest.size;
            latestRoot = latest.root;
        }
        if (size <= latestSize) revert AnchorNotGrowing(latestSize, size);
        if (size > MAX_LOG_SIZE) revert InvalidArgument(10);
        if (consistency.length > MAX_PROOF_LENGTH) revert InvalidArgument(5);
        if (latestSize > 0 && !_consistent(latestSize, size, latestRoot, root, consistency)) {
            revert InconsistentAnchor(latestSize, size);
        }
        if (latestSize == 0 && consistency.length != 0) revert InvalidArgument(5);
        _anchors[msg.sender].push(Anchor(root, size, uint64(block.timestamp)));
        emit BatchAnchored(msg.sender, index, root, size, uint64(block.timestamp));
    }

    function anchorCount(address operator) external view returns (uint256) {
        return _anchors[operator].length;
    }

    function getAnchor(address operator, uint256 index) external view returns (Anchor memory) {
        if (index >= _anchors[operator].length) revert UnknownAnchor(operator, index);
        return _anchors[operator][index];
    }

    // ---------------------------------------------------------------- internals

    /// @dev An admin, or the controller of an on-chain record while it is an authorized
    /// uploader (admins are the only controllers of a record that exists only in an anchored
    /// batch, since its uploader is not known on chain).
    function _requireController(bytes32 recordId) private view {
        if (isAdmin(msg.sender)) return;
        // slither-disable-next-line timestamp (compares the controller address, not a time)
        if (msg.sender == controllerOf(recordId) && _uploaders[msg.sender]) return;
        revert NotRecordController(recordId, msg.sender);
    }

    /// @dev The signer of an EIP-191 signature over `digest`; refuses malformed and malleated
    /// signatures (65 bytes, v 27 or 28, s in the lower half of the order).
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) revert InvalidArgument(9);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > _HALF_ORDER || (v != 27 && v != 28)) revert InvalidArgument(9);
        bytes32 signed = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest));
        address signer = ecrecover(signed, v, r, s);
        if (signer == address(0)) revert InvalidArgument(9);
        return signer;
    }

    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /// @dev RFC 9162 section 2.1.4.2 for 0 < oldSize < newSize. Loops are bounded by the proof
    /// length (at most MAX_PROOF_LENGTH) and by the 64 bits of the sizes.
    function _consistent(
        uint64 oldSize,
        uint64 newSize,
        bytes32 oldRoot,
        bytes32 newRoot,
        bytes32[] calldata proof
    ) private pure returns (bool) {
        if (proof.length == 0) return false;
        uint256 start = 0;
        bytes32 seed;
        if (oldSize & (oldSize - 1) == 0) {
            seed = oldRoot; // an old tree of 2**k leaves is itself a node of the new tree
        } else {
            seed = proof[0];
            start = 1;
        }
        uint64 fn = oldSize - 1;
        uint64 sn = newSize - 1;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        bytes32 fr = seed;
        bytes32 sr = seed;
        for (uint256 i = start; i < proof.length; ++i) {
            if (sn == 0) return false;
            bytes32 c = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                fr = _node(c, fr);
                sr = _node(c, sr);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = _node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == oldRoot && sr == newRoot;
    }
}
