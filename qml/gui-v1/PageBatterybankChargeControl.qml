// dbus-batterybank GUI v1: the charge limits with the mode and what limits them right now.
import QtQuick 2
import com.victron.velib 1.0
import "utils.js" as Utils

MbPage {
	id: root

	property string bindPrefix
	property VBusItem inverterConnected: VBusItem { bind: Utils.path(root.bindPrefix, "/Inverter/Connected") }

	model: VisibleItemModel {
		MbItemValue {
			description: qsTr("Charge mode")
			item.bind: Utils.path(root.bindPrefix, "/Info/ChargeMode")
			show: item.valid
		}
		MbItemValue {
			description: qsTr("Charge Voltage Limit (CVL)")
			item.bind: Utils.path(root.bindPrefix, "/Info/MaxChargeVoltage")
		}
		MbItemValue {
			description: qsTr("Charge Current Limit (CCL)")
			item.bind: Utils.path(root.bindPrefix, "/Info/MaxChargeCurrent")
		}
		MbItemValue {
			description: qsTr("Charge limited by")
			item.bind: Utils.path(root.bindPrefix, "/Info/ChargeLimitation")
		}
		MbItemValue {
			description: qsTr("Discharge Current Limit (DCL)")
			item.bind: Utils.path(root.bindPrefix, "/Info/MaxDischargeCurrent")
		}
		MbItemValue {
			description: qsTr("Discharge limited by")
			item.bind: Utils.path(root.bindPrefix, "/Info/DischargeLimitation")
		}
		// Only when this battery (or bank) is presented to a non-Victron inverter over CAN ([inverter]).
		MbItemValue {
			id: inverterProtocol
			description: qsTr("Inverter output (CAN)")
			item.bind: Utils.path(root.bindPrefix, "/Inverter/Protocol")
			show: item.valid
		}
		MbItemValue {
			description: qsTr("Inverter")
			item.value: inverterConnected.valid && inverterConnected.value === 1 ? qsTr("Connected") : qsTr("Not heard")
			show: inverterProtocol.item.valid
		}
		MbItemValue {
			description: qsTr("Inverter last heard (s ago)")
			item.bind: Utils.path(root.bindPrefix, "/Inverter/LastSeen")
			show: inverterProtocol.item.valid && item.valid
		}
	}
}
