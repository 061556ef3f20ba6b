// dbus-batterybank gui-v2 plugin: the charge limits with the mode and what limits them right now.
// Bound to ProductId 0xBA6B (device list > our battery > Charge control).
import QtQuick
import Victron.VenusOS

DeviceListPluginPage {
	id: root

	readonly property string serviceUid: device.serviceUid

	title: "Charge control"

	GradientListView {
		model: VisibleItemModel {
			ListText {
				text: "Charge mode"
				dataItem.uid: root.serviceUid + "/Info/ChargeMode"
				preferredVisible: dataItem.valid
			}
			ListQuantity {
				text: "Charge Voltage Limit (CVL)"
				dataItem.uid: root.serviceUid + "/Info/MaxChargeVoltage"
				unit: VenusOS.Units_Volt_DC
			}
			ListQuantity {
				text: "Charge Current Limit (CCL)"
				dataItem.uid: root.serviceUid + "/Info/MaxChargeCurrent"
				unit: VenusOS.Units_Amp
			}
			ListText {
				text: "Charge limited by"
				dataItem.uid: root.serviceUid + "/Info/ChargeLimitation"
				secondaryText: dataItem.valid && dataItem.value !== "" ? dataItem.value : "--"
			}
			ListQuantity {
				text: "Discharge Current Limit (DCL)"
				dataItem.uid: root.serviceUid + "/Info/MaxDischargeCurrent"
				unit: VenusOS.Units_Amp
			}
			ListText {
				text: "Discharge limited by"
				dataItem.uid: root.serviceUid + "/Info/DischargeLimitation"
				secondaryText: dataItem.valid && dataItem.value !== "" ? dataItem.value : "--"
			}
			// Only when this battery (or bank) is presented to a non-Victron inverter over CAN ([inverter]).
			ListText {
				id: inverterProtocol
				text: "Inverter output (CAN)"
				dataItem.uid: root.serviceUid + "/Inverter/Protocol"
				preferredVisible: dataItem.valid
			}
			ListText {
				text: "Inverter"
				dataItem.uid: root.serviceUid + "/Inverter/Connected"
				preferredVisible: inverterProtocol.dataItem.valid
				secondaryText: dataItem.value === 1 ? "Connected" : "Not heard"
			}
			ListText {
				text: "Inverter last heard"
				dataItem.uid: root.serviceUid + "/Inverter/LastSeen"
				preferredVisible: inverterProtocol.dataItem.valid && dataItem.valid
				secondaryText: dataItem.valid ? dataItem.value + " s ago" : "--"
			}
		}
	}
}
