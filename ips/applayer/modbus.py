"""Modbus/TCP parser (sans-IO): MBAP header, unit id, function code.

Per direction the stream is cut into ADUs (7-byte MBAP header: transaction
id, protocol id (0), length, unit id; then the PDU). The length field is at
most 254 (Modbus spec), so at most one ADU of 260 bytes is ever buffered; a
larger length or non-zero protocol id is an event and stops the direction.
A request opens a transaction keyed by transaction id; the response with the
same id completes it (exception responses have function code | 0x80).
"""
from __future__ import annotations

from ips.applayer import Tx

MAX_ADU_BYTES = 7 + 253
MAX_OPEN_TRANSACTIONS = 64

FUNCTION_NAMES = {1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers",
                  4: "read_input_registers", 5: "write_single_coil", 6: "write_single_register",
                  7: "read_exception_status", 8: "diagnostics", 11: "get_comm_event_counter",
                  12: "get_comm_event_log", 15: "write_multiple_coils",
                  16: "write_multiple_registers", 17: "report_server_id", 20: "read_file_record",
                  21: "write_file_record", 22: "mask_write_register",
                  23: "read_write_multiple_registers", 24: "read_fifo_queue",
                  43: "encapsulated_interface"}


class _Direction:
    __slots__ = ("buffer", "stopped")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.stopped = False


class ModbusParser:
    """One Modbus/TCP connection (client = master)."""

    __slots__ = ("events", "client", "server", "open", "next_tx_id")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.client = _Direction()
        self.server = _Direction()
        self.open: dict[int, tuple[Tx, dict]] = {}   # transaction id -> (tx, request fields)
        self.next_tx_id = 0

    @property
    def buffered_bytes(self) -> int:
        return len(self.client.buffer) + len(self.server.buffer)

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        side = self.client if to_server else self.server
        if gap:
            self.events.append("modbus.gap")
            side.stopped = True
            side.buffer = bytearray()
        if side.stopped:
            return []
        side.buffer += data
        buffer = side.buffer
        position = 0
        out: list[Tx] = []
        while len(buffer) - position >= 7:
            transaction_id = int.from_bytes(buffer[position:position + 2], "big")
            protocol_id = int.from_bytes(buffer[position + 2:position + 4], "big")
            length = int.from_bytes(buffer[position + 4:position + 6], "big")
            if protocol_id != 0 or not 2 <= length <= 254:
                self.events.append("modbus.invalid_protocol_id" if protocol_id
                                   else "modbus.invalid_length")
                side.stopped = True
                side.buffer = bytearray()
                return out
            if len(buffer) - position < 6 + length:
                break
            unit_id = buffer[position + 6]
            pdu = bytes(buffer[position + 7:position + 6 + length])
            position += 6 + length
            out.append(self._adu(transaction_id, unit_id, pdu, to_server))
        del buffer[:position]
        return out

    def finish(self) -> list[Tx]:
        out = []
        for tx, fields in self.open.values():
            self._close(tx, fields)
            out.append(tx)
        self.open.clear()
        return out

    def _adu(self, transaction_id: int, unit_id: int, pdu: bytes, to_server: bool) -> Tx:
        function = pdu[0]
        base = function & 0x7F
        message = {"transaction_id": transaction_id, "protocol_id": 0, "unit_id": unit_id,
                   "function_code": base,
                   "function_name": FUNCTION_NAMES.get(base, "unknown")}
        if function & 0x80:
            message["exception_code"] = pdu[1] if len(pdu) > 1 else None
        if base in (1, 2, 3, 4, 5, 6, 15, 16) and to_server and len(pdu) >= 5:
            message["address"] = int.from_bytes(pdu[1:3], "big")
            message["quantity_or_value"] = int.from_bytes(pdu[3:5], "big")
        if to_server:
            tx = Tx(app_proto="modbus", tx_id=self.next_tx_id, to_server=True,
                    buffers={"modbus.function_code": base, "modbus.unit_id": unit_id,
                             "modbus.data": pdu[1:]})
            self.next_tx_id += 1
            if len(self.open) >= MAX_OPEN_TRANSACTIONS:
                self._close(*self.open.pop(next(iter(self.open))))
            if transaction_id in self.open:
                self._close(*self.open.pop(transaction_id))
            # The record is set when the response (or flow end) completes it.
            self.open[transaction_id] = (tx, {"request": message})
            return tx
        tx, fields = self.open.pop(transaction_id, (None, {}))
        if tx is None:
            tx = Tx(app_proto="modbus", tx_id=self.next_tx_id, to_server=False)
            self.next_tx_id += 1
            self.events.append("modbus.unsolicited_response")
        tx.to_server = False
        self._close(tx, dict(fields, response=message))
        return tx

    @staticmethod
    def _close(tx: Tx, fields: dict) -> None:
        tx.record = fields
        tx.complete = True
